-- Unit tests of the plugin's frame codec (editors/nvim/lua/claif_cod/frame.lua), pure Lua.
-- Run: nvim --headless -u NONE -i NONE --cmd "set rtp+=editors/nvim" -c "luafile tests/editors/frame_test.lua"
-- Prints one line per test and "N passed, N failed"; exits non-zero on any failure.

local frame = require("claif_cod.frame")

local results = { passed = 0, failed = 0 }
local out = io.stdout

local function test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    results.passed = results.passed + 1
    out:write("ok   " .. name .. "\n")
  else
    results.failed = results.failed + 1
    out:write("FAIL " .. name .. ": " .. tostring(err) .. "\n")
  end
end

local function eq(actual, expected, what)
  if actual ~= expected then
    local function show(v)
      if type(v) == "string" and #v > 80 then
        return string.format("<%d bytes: %q...>", #v, v:sub(1, 40))
      end
      return vim.inspect(v)
    end
    error(string.format("%s: expected %s, got %s", what or "value", show(expected), show(actual)), 2)
  end
end

local function hex(s)
  return (s:gsub(".", function(c)
    return string.format("%02x", c:byte())
  end))
end

local function bodies_eq(actual, expected)
  eq(#actual, #expected, "number of bodies")
  for i = 1, #expected do
    eq(actual[i], expected[i], "body " .. i)
  end
end

-- The worked example of docs/protocol.md: a 128-byte hello body in a 132-byte frame.
local HELLO = '{"method":"hello","jsonrpc":"2.0","id":1,"params":{"protocol_version":1,'
  .. '"package_version":"0.2.0","client_name":"claif-cod.el"}}'

test("header is 4 bytes big-endian", function()
  eq(hex(frame.header(0)), "00000000")
  eq(hex(frame.header(1)), "00000001")
  eq(hex(frame.header(128)), "00000080")
  eq(hex(frame.header(255)), "000000ff")
  eq(hex(frame.header(256)), "00000100")
  eq(hex(frame.header(65535)), "0000ffff")
  eq(hex(frame.header(65536)), "00010000")
  eq(hex(frame.header(16777215)), "00ffffff")
  eq(hex(frame.header(16777216)), "01000000")
  eq(hex(frame.header(4294967295)), "ffffffff")
end)

test("the protocol doc's hello frame", function()
  eq(#HELLO, 128, "body length")
  local encoded = frame.encode(HELLO)
  eq(#encoded, 132, "frame length")
  eq(hex(encoded:sub(1, 6)), "000000807b22")
  eq(encoded:sub(5), HELLO)
  bodies_eq(frame.decoder():feed(encoded), { HELLO })
end)

test("length counts UTF-8 bytes, not characters", function()
  local body = '{"text":"héllo → 世界"}'
  local encoded = frame.encode(body)
  eq(hex(encoded:sub(1, 4)), string.format("%08x", #body))
  bodies_eq(frame.decoder():feed(encoded), { body })
end)

test("encode refuses empty and oversized bodies", function()
  eq(pcall(frame.encode, ""), false, "empty body accepted")
  eq(pcall(frame.encode, "12345", 4), false, "oversized body accepted")
  eq(#frame.encode("1234", 4), 8, "body at the limit")
end)

test("partial frames: one byte at a time", function()
  local bodies = { '{"a":1}', '{"b":"two"}', HELLO }
  local stream = table.concat(vim.tbl_map(frame.encode, bodies))
  local decoder = frame.decoder()
  local got = {}
  for i = 1, #stream do
    local decoded, err = decoder:feed(stream:sub(i, i))
    eq(err, nil, "error")
    vim.list_extend(got, decoded)
  end
  bodies_eq(got, bodies)
  eq(decoder:pending(), 0, "bytes left over")
end)

test("partial header, then header and body split everywhere", function()
  local body = '{"jsonrpc":"2.0","id":7,"result":{"ok":true}}'
  local encoded = frame.encode(body)
  for cut = 1, #encoded - 1 do
    local decoder = frame.decoder()
    local first = decoder:feed(encoded:sub(1, cut))
    eq(#first, 0, "bodies before the frame is whole (cut " .. cut .. ")")
    eq(decoder:pending(), cut, "pending (cut " .. cut .. ")")
    bodies_eq(decoder:feed(encoded:sub(cut + 1)), { body })
  end
end)

test("several frames in one chunk, plus the start of the next", function()
  local bodies = {}
  for i = 1, 50 do
    bodies[i] = string.format('{"jsonrpc":"2.0","method":"session.event","params":{"n":%d}}', i)
  end
  local next_frame = frame.encode('{"last":true}')
  local chunk = table.concat(vim.tbl_map(frame.encode, bodies)) .. next_frame:sub(1, 6)
  local decoder = frame.decoder()
  bodies_eq(decoder:feed(chunk), bodies)
  eq(decoder:pending(), 6, "pending")
  bodies_eq(decoder:feed(next_frame:sub(7)), { '{"last":true}' })
end)

test("chunks that end and start mid-frame across many frames", function()
  local bodies = {}
  for i = 1, 200 do
    bodies[i] = '{"i":' .. i .. ',"pad":"' .. string.rep("x", i % 37) .. '"}'
  end
  local stream = table.concat(vim.tbl_map(frame.encode, bodies))
  local decoder = frame.decoder()
  local got = {}
  local pos, size = 1, 1
  while pos <= #stream do
    vim.list_extend(got, (decoder:feed(stream:sub(pos, pos + size - 1))))
    pos = pos + size
    size = size % 23 + 1 -- chunk sizes 1..23, so boundaries land everywhere
  end
  bodies_eq(got, bodies)
end)

test("a large frame (8 MiB) in 64 KiB reads", function()
  local body = '{"text":"' .. string.rep("abcdefgh", 1024 * 1024) .. '"}'
  local encoded = frame.encode(body)
  local decoder = frame.decoder()
  local got = {}
  local started = vim.loop.hrtime()
  for pos = 1, #encoded, 65536 do
    local decoded, err = decoder:feed(encoded:sub(pos, pos + 65535))
    eq(err, nil, "error")
    if pos + 65536 <= #encoded then
      eq(#decoded, 0, "body before the last read")
    end
    vim.list_extend(got, decoded)
  end
  local elapsed_ms = (vim.loop.hrtime() - started) / 1e6
  eq(#got, 1, "bodies")
  eq(#got[1], #body, "body length")
  eq(got[1] == body, true, "body intact")
  -- Linear, not quadratic: well under a second here; the bound only catches pathological copying.
  assert(elapsed_ms < 10000, string.format("decoding took %.0f ms", elapsed_ms))
  out:write(string.format("     (8 MiB decoded in %.0f ms)\n", elapsed_ms))
end)

test("a frame at exactly the limit, and the limit can be raised", function()
  local body = string.rep("x", 1000)
  bodies_eq(frame.decoder(1000):feed(frame.encode(body, 1000)), { body })
  local _, err = frame.decoder(999):feed(frame.encode(body, 1000))
  assert(err and err:match("over the limit"), "no error for a frame over the limit: " .. tostring(err))
end)

test("an oversized header fails before the body arrives", function()
  local decoder = frame.decoder()
  local bodies, err = decoder:feed(frame.encode('{"ok":1}') .. frame.header(16 * 1024 * 1024 + 1))
  bodies_eq(bodies, { '{"ok":1}' }) -- what came before is still delivered
  assert(err and err:match("16777217"), "error names the size: " .. tostring(err))
  local later, again = decoder:feed("more")
  eq(#later, 0, "bodies after failure")
  eq(again, err, "the decoder stays failed")
end)

test("an empty frame is an error", function()
  local _, err = frame.decoder():feed(frame.header(0) .. "{}")
  assert(err and err:match("empty"), "no error for an empty frame: " .. tostring(err))
end)

test("feeding nothing is harmless", function()
  local decoder = frame.decoder()
  eq(#decoder:feed(""), 0, "bodies")
  eq(#decoder:feed(nil), 0, "bodies")
  bodies_eq(decoder:feed(frame.encode("{}")), { "{}" })
end)

out:write(string.format("%d passed, %d failed\n", results.passed, results.failed))
out:flush()
if results.failed > 0 then
  vim.cmd("cquit 1")
else
  vim.cmd("qall!")
end
