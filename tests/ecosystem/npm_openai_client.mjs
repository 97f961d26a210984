// The npm `openai` SDK against `claif-codd serve --http`, used as its README shows.
// Usage: node npm_openai_client.mjs SCENARIO BASE_URL; prints one JSON object with what it saw.
import OpenAI from "openai";

const [scenario, baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const scenarios = {
  async chat() {
    const completion = await client.chat.completions.create({
      model: "o4-mini",
      messages: [{ role: "user", content: "hello node" }],
    });
    return { content: completion.choices[0].message.content };
  },

  async chatStream() {
    const stream = await client.chat.completions.create({
      model: "o4-mini",
      messages: [{ role: "user", content: "one two three" }],
      stream: true,
    });
    const deltas = [];
    for await (const chunk of stream) deltas.push(chunk.choices[0]?.delta?.content ?? "");
    return { deltas };
  },

  async chatTools() {
    const messages = [{ role: "user", content: 'Weather? [[call:get_weather {"city": "Lima"}]]' }];
    const first = await client.chat.completions.create({ model: "o4-mini", messages, tools: [weather] });
    const message = first.choices[0].message;
    messages.push(message);
    for (const call of message.tool_calls ?? []) {
      const { city } = JSON.parse(call.function.arguments);
      messages.push({ role: "tool", tool_call_id: call.id, content: `Sunny in ${city}` });
    }
    const final = await client.chat.completions.create({ model: "o4-mini", messages, tools: [weather] });
    return {
      finishReason: first.choices[0].finish_reason,
      calls: (message.tool_calls ?? []).map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
      content: final.choices[0].message.content,
    };
  },

  async responses() {
    const first = await client.responses.create({ model: "o4-mini", instructions: "NODE-RULE-2", input: "hello responses" });
    const second = await client.responses.create({ model: "o4-mini", input: "and again", previous_response_id: first.id });
    const fetched = await client.responses.retrieve(first.id);
    return { first: first.output_text, second: second.output_text, retrieved: fetched.output_text };
  },

  async responsesTools() {
    const tool = { type: "function", ...weather.function };
    const first = await client.responses.create({
      model: "o4-mini",
      input: 'Weather? [[call:get_weather {"city": "Kyiv"}]]',
      tools: [tool],
    });
    const calls = first.output.filter((item) => item.type === "function_call");
    const outputs = calls.map((call) => ({
      type: "function_call_output",
      call_id: call.call_id,
      output: `Sunny in ${JSON.parse(call.arguments).city}`,
    }));
    const final = await client.responses.create({
      model: "o4-mini",
      previous_response_id: first.id,
      input: outputs,
      tools: [tool],
    });
    return { calls: calls.map((c) => [c.name, JSON.parse(c.arguments)]), content: final.output_text };
  },

  // A per-call timeout (the SDK then sends X-Stainless-Timeout) on a turn that ran a command before
  // it took too long, with the SDK's default retries.
  async timeoutAfterCommand() {
    const retrying = new OpenAI({ baseURL, apiKey: "unused", defaultHeaders: { "X-Claif-Cod-Sandbox": "workspace-write" } });
    const messages = [{ role: "user", content: "[[tool:echo ran >> ran.txt]] [[slow:3000]] slow" }];
    try {
      await retrying.chat.completions.create({ model: "o4-mini", messages }, { timeout: 2500 });
      return { error: null };
    } catch (error) {
      return { error: error.constructor.name, status: error.status, shouldRetry: error.headers?.get("x-should-retry") };
    }
  },
};

process.stdout.write(JSON.stringify(await scenarios[scenario]()));
