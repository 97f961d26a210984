-- Unit tests of the plugin's pure parts (no daemon): socket path, session name, the text sent,
-- and how the output buffer renders a turn's events.
-- Run: nvim --headless -u NONE -i NONE --cmd "set rtp+=editors/nvim" -c "luafile tests/editors/unit_test.lua"

local claif = require("claif_cod")
local output = require("claif_cod.output")

local results = { passed = 0, failed = 0 }
local out = io.stdout

local function test(name, fn)
  local saved_env = {}
  for _, key in ipairs({ "CLAIF_COD_SOCKET", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "HOME" }) do
    saved_env[key] = vim.env[key]
  end
  local ok, err = pcall(fn)
  for key, value in pairs(saved_env) do
    vim.env[key] = value
  end
  vim.g.claif_cod_session = nil
  claif.setup({})
  if ok then
    results.passed = results.passed + 1
    out:write("ok   " .. name .. "\n")
  else
    results.failed = results.failed + 1
    out:write("FAIL " .. name .. ": " .. tostring(err) .. "\n")
  end
end

local function eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    error(string.format("%s: expected %s, got %s", what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

local tmp = vim.fn.tempname()
vim.fn.mkdir(tmp, "p", 448) -- 0700: the fake daemons' sockets below go here, and must pass the trust checks
vim.fn.mkdir(tmp .. "/runtime", "p")

test("socket: $CLAIF_COD_SOCKET first", function()
  vim.env.CLAIF_COD_SOCKET = "/x/explicit.sock"
  vim.env.XDG_RUNTIME_DIR = tmp .. "/runtime"
  eq(claif.socket_path(), "/x/explicit.sock")
end)

test("socket: setup({socket}) wins over the environment", function()
  vim.env.CLAIF_COD_SOCKET = "/x/explicit.sock"
  claif.setup({ socket = "/y/configured.sock" })
  eq(claif.socket_path(), "/y/configured.sock")
end)

test("socket: $XDG_RUNTIME_DIR when it is a directory", function()
  vim.env.CLAIF_COD_SOCKET = nil
  vim.env.XDG_RUNTIME_DIR = tmp .. "/runtime"
  eq(claif.socket_path(), tmp .. "/runtime/claif-cod/codd.sock")
end)

test("socket: ~/.cache (or $XDG_CACHE_HOME) otherwise", function()
  vim.env.CLAIF_COD_SOCKET = nil
  vim.env.XDG_RUNTIME_DIR = tmp .. "/no-such-dir"
  vim.env.XDG_CACHE_HOME = nil
  vim.env.HOME = tmp .. "/home"
  eq(claif.socket_path(), tmp .. "/home/.cache/claif-cod/codd.sock")
  vim.env.XDG_RUNTIME_DIR = nil
  eq(claif.socket_path(), tmp .. "/home/.cache/claif-cod/codd.sock")
  vim.env.XDG_CACHE_HOME = tmp .. "/cache"
  eq(claif.socket_path(), tmp .. "/cache/claif-cod/codd.sock")
end)

test("session: derived from the cwd, stable and per project", function()
  local name = claif.session_name("/home/ada/my project")
  eq(name, "nvim-my_project-" .. vim.fn.sha256("/home/ada/my project"):sub(1, 8))
  eq(claif.session_name("/home/ada/my project"), name)
  assert(claif.session_name("/srv/my project") ~= name, "different projects share a session")
end)

test("session: each character other than [A-Za-z0-9._-] is one _, a multibyte one too", function()
  local hash = vim.fn.sha256("/home/ada/über café"):sub(1, 8)
  eq(claif.session_name("/home/ada/über café"), "nvim-_ber_caf_-" .. hash)
  eq(claif.safe_name("日本語.v2-x_y"), "___.v2-x_y")
  eq(claif.safe_name("a\255b"), "a_b") -- not UTF-8: one _ per byte
end)

test("session: g:claif_cod_session, then setup({session})", function()
  claif.setup({ session = "configured" })
  eq(claif.session_name("/p"), "configured")
  vim.g.claif_cod_session = "from-g"
  eq(claif.session_name("/p"), "from-g")
  vim.g.claif_cod_session = nil
  claif.setup({ session = function(cwd)
    return "fn:" .. cwd
  end })
  eq(claif.session_name("/p"), "fn:/p")
end)

test("text: the prompt, where the lines come from, and a fenced block", function()
  local buf = vim.api.nvim_create_buf(true, false)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { "a = 1", "b = '```'", "c = 3" })
  vim.api.nvim_buf_set_option(buf, "filetype", "python")
  eq(claif.build_text("explain", buf, 1, 3, true),
    "explain\n\nFrom an unnamed buffer:\n````python\na = 1\nb = '```'\nc = 3\n````")
  vim.api.nvim_buf_set_name(buf, vim.fn.getcwd() .. "/pkg/mod.py")
  eq(claif.build_text("why?", buf, 2, 3, false),
    "why?\n\nFrom `pkg/mod.py` (lines 2-3):\n````python\nb = '```'\nc = 3\n````")
end)

test("output: deltas, items, a reset and the footer", function()
  local turn = output.turn("unit-1", "explain this\nsecond line", "/p")
  turn:item({ type = "agent_message", id = "m1", text = "" }, false)
  turn:delta("m1", "Hello")
  turn:delta("m1", " world,\nsecond")
  turn:item({ type = "command_execution", id = "c1", command = "ls", status = "inProgress" }, false)
  turn:item({ type = "command_execution", id = "c1", command = "ls", status = "completed", exit_code = 2 }, true)
  turn:item({ type = "file_change", id = "f1", status = "completed",
    changes = { { path = "/p/a.txt", kind = "update" }, { path = "/elsewhere/b.txt", kind = "add" } } }, true)
  turn:delta("m2", "Done.")
  turn:item({ type = "command_execution", id = "c2", command = "rm -rf /", status = "declined" }, true)
  turn:reset("m1")
  turn:delta("m1", "Retried.")
  turn:finish("completed", { prompt_tokens = 10, completion_tokens = 3, total_tokens = 13, cached_tokens = 4 })
  eq(turn:lines(), {
    "## explain this", "",
    "Retried.",
    "$ ls  (exit 2)",
    "~ a.txt", "~ /elsewhere/b.txt  (add)",
    "", "Done.",
    "$ rm -rf /  (declined)",
    "", "_completed · tokens: 10 prompt (4 cached) + 3 completion = 13 total_",
  })
  local buf = output.buffer("unit-1")
  eq(vim.api.nvim_buf_get_name(buf), "claif://unit-1")
  eq(vim.api.nvim_buf_get_option(buf, "buftype"), "nofile")
  eq(vim.api.nvim_buf_get_option(buf, "filetype"), "markdown")
  eq(vim.api.nvim_buf_get_option(buf, "modifiable"), false)
end)

test("output: a multi-line command shows its first line and …", function()
  local turn = output.turn("unit-5", "q")
  turn:item({ type = "command_execution", id = "c1", command = "echo alpha\necho beta", status = "inProgress" }, false)
  turn:item({ type = "command_execution", id = "c2", command = "cat <<'EOF'\r\nx\r\nEOF", status = "completed" }, true)
  turn:item({ type = "command_execution", id = "c3", command = "ls\n", status = "completed" }, true)
  eq(turn:lines(), { "## q", "", "$ echo alpha …", "$ cat <<'EOF' …", "$ ls" })
end)

test("output: a failed command shows its exit code when there is one", function()
  local turn = output.turn("unit-6", "q")
  turn:item({ type = "command_execution", id = "c1", command = "exit 3", status = "failed", exit_code = 3 }, true)
  turn:item({ type = "command_execution", id = "c2", command = "x", status = "failed", exit_code = vim.NIL }, true)
  turn:item({ type = "command_execution", id = "c3", command = "y", status = "declined" }, true)
  turn:item({ type = "command_execution", id = "c4", command = "z", status = "completed", exit_code = 0 }, true)
  eq(turn:lines(), { "## q", "", "$ exit 3  (exit 3)", "$ x  (failed)", "$ y  (declined)", "$ z" })
end)

test("output: separate agent messages are separate paragraphs", function()
  local turn = output.turn("unit-7", "q")
  turn:item({ type = "agent_message", id = "m1", text = "" }, false)
  turn:delta("m1", "Let me look.")
  turn:item({ type = "agent_message", id = "m1", text = "Let me look." }, true)
  turn:delta("m2", "It adds")
  turn:delta("m2", " two\nnumbers.")
  turn:item({ type = "agent_message", id = "m2", text = "It adds two\nnumbers." }, true)
  turn:finish("completed", nil)
  eq(turn:lines(), { "## q", "", "Let me look.", "", "It adds two", "numbers.", "", "_completed_" })
end)

test("output: a delta rewrites only the message's last line; windows follow the end", function()
  local buf = output.buffer("unit-8")
  local win = output.show(buf, "botright split")
  local turn = output.turn("unit-8", "q")
  turn:delta("m1", "one\ntwo\nthree")
  turn:item({ type = "command_execution", id = "c1", command = "ls", status = "inProgress" }, false)
  turn:delta("m2", "start")
  local changes, words = {}, { "start" }
  vim.api.nvim_buf_attach(buf, false, { on_lines = function(_, _, _, first, last_old)
    changes[#changes + 1] = { first, last_old }
  end })
  for i = 1, 200 do
    turn:delta("m2", " w" .. i)
    words[#words + 1] = "w" .. i
  end
  turn:delta("m1", " more") -- an earlier message (rare): its line, and the later lines shift
  eq(#changes, 201)
  for i = 1, 200 do
    eq(changes[i], { 7, 8 }, "delta " .. i) -- the buffer's 8th line only, never the whole message
  end
  eq(changes[201], { 4, 5 })
  eq(turn:lines()[5], "three more")
  eq(turn:lines()[8], table.concat(words, " "))
  turn:delta("m2", "\nlast")
  eq(vim.api.nvim_win_get_cursor(win), { vim.api.nvim_buf_line_count(buf), 0 })
  vim.api.nvim_win_close(win, true)
end)

test("output: the final text of an item wins; turns stack up in one buffer", function()
  local first = output.turn("unit-2", "one")
  first:delta("m", "partial")
  first:item({ type = "agent_message", id = "m", text = "complete answer" }, true)
  first:finish("completed", nil)
  local second = output.turn("unit-2", "two")
  second:finish("error", nil, "boom\nbang")
  local buf = output.buffer("unit-2")
  eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), {
    "## one", "", "complete answer", "", "_completed_",
    "", "## two", "", "", "_error: boom bang_",
  })
end)

test("output: a deleted or wiped buffer is rebuilt with the whole turn", function()
  local turn = output.turn("unit-4", "q")
  turn:delta("m", "hello")
  vim.cmd("bdelete " .. output.buffer("unit-4"))
  turn:delta("m", " world")
  eq(vim.api.nvim_buf_get_lines(output.buffer("unit-4"), 0, -1, false), { "## q", "", "hello world" })
  eq(vim.api.nvim_buf_get_option(output.buffer("unit-4"), "buftype"), "nofile")
  vim.cmd("bwipeout! " .. output.buffer("unit-4"))
  turn:finish("interrupted", { prompt_tokens = 0, completion_tokens = 0, total_tokens = 0 })
  eq(vim.api.nvim_buf_get_lines(output.buffer("unit-4"), 0, -1, false), { "## q", "", "hello world", "", "_interrupted_" })
end)

test("output: shown in a split, focus stays put", function()
  local before = vim.api.nvim_get_current_win()
  local buf = output.buffer("unit-3")
  local win = output.show(buf, "botright vsplit")
  eq(vim.api.nvim_get_current_win(), before, "current window")
  eq(vim.api.nvim_win_get_buf(win), buf)
  eq(output.show(buf, "botright vsplit"), win, "reuses the window")
end)

test("output: from another tab page, a split opens there", function()
  local buf = output.buffer("unit-9")
  local first = output.show(buf, "botright vsplit")
  vim.cmd("tabnew")
  local win = output.show(buf, "botright vsplit")
  assert(win ~= first, "reused the window of the first tab page")
  eq(vim.api.nvim_win_get_tabpage(win), vim.api.nvim_get_current_tabpage())
  eq(vim.api.nvim_win_get_buf(win), buf)
  vim.cmd("tabclose")
end)

test("trust: the socket's directory must be ours, closed to others, and not a symlink", function()
  local trust = require("claif_cod.trust")
  local uv = vim.loop
  local dir = tmp .. "/trust"
  vim.fn.mkdir(dir, "p", 448)
  local path = dir .. "/codd.sock"
  eq(trust.check_socket(path), nil, "no socket yet: connecting will say so")
  eq(trust.check_socket(tmp .. "/missing/codd.sock"), nil, "no directory")
  assert(uv.fs_chmod(dir, 511)) -- 0777
  eq(trust.check_socket(path), "refusing to connect to claif-codd at " .. path .. ": " .. dir
    .. " has mode 0777; group and others must have no access: chmod 700 " .. dir)
  assert(uv.fs_chmod(dir, 488)) -- 0750
  assert(trust.check_socket(path):match("has mode 0750;"))
  assert(uv.fs_chmod(dir, 448))
  assert(uv.fs_symlink(dir, tmp .. "/link"))
  eq(trust.check_socket(tmp .. "/link/codd.sock"), "refusing to connect to claif-codd at " .. tmp
    .. "/link/codd.sock: " .. tmp .. "/link is a symlink; remove it (rm " .. tmp .. "/link) and restart the daemon")
  vim.fn.writefile({}, path)
  eq(trust.check_socket(path), "refusing to connect to claif-codd at " .. path .. ": " .. path
    .. " is not a socket; remove it (rm " .. path .. ") and restart the daemon")
  os.remove(path)
  if uv.getuid() == 0 then -- only root can give a directory away
    assert(uv.fs_chown(dir, 65534, 65534))
    eq(trust.check_socket(path), "refusing to connect to claif-codd at " .. path .. ": " .. dir
      .. " is owned by uid 65534, not by you (uid 0); remove it or set $CLAIF_COD_SOCKET to a path in a "
      .. "directory you own")
    assert(uv.fs_chown(dir, 0, 0))
  end
end)

-- A fake daemon on a Unix socket inside this Neovim: `on_frame(client_pipe, message)` answers.
local function fake_daemon(path, on_frame)
  local frame = require("claif_cod.frame")
  local server = vim.loop.new_pipe(false)
  assert(server:bind(path))
  server:listen(8, function()
    local conn = vim.loop.new_pipe(false)
    server:accept(conn)
    local decoder = frame.decoder()
    conn:read_start(function(_, data)
      if data then
        for _, body in ipairs((decoder:feed(data))) do
          local message = vim.json.decode(body)
          vim.schedule(function()
            on_frame(conn, message)
          end)
        end
      end
    end)
  end)
  return server
end

test("rpc: a daemon that never answers hello times out", function()
  local rpc = require("claif_cod.rpc")
  local path = tmp .. "/silent.sock"
  local server = fake_daemon(path, function() end)
  rpc.CONNECT_TIMEOUT_MS = 300
  local client = rpc.new({ path = path })
  local got
  client:connect(function(err)
    got = err
  end)
  vim.wait(3000, function()
    return got ~= nil
  end, 10)
  rpc.CONNECT_TIMEOUT_MS = 10000
  server:close()
  eq(got and got.message, "claif-codd on " .. path .. " did not answer within 0.3 s")
  eq(client:is_open(), false)
end)

test("rpc: split and batched frames, notifications before results, null-id errors", function()
  local rpc = require("claif_cod.rpc")
  local frame = require("claif_cod.frame")
  local path = tmp .. "/fake.sock"
  local function encode(message)
    return frame.encode(vim.json.encode(message))
  end
  local server = fake_daemon(path, function(conn, message)
    if message.method == "hello" then
      eq(message.params, { protocol_version = 1, package_version = rpc.PACKAGE_VERSION,
        client_name = "claif-cod.nvim", capabilities = {} })
      local reply = encode({ jsonrpc = "2.0", id = message.id, result = { protocol_version = 1, max_frame_size = 4096 } })
      conn:write(reply:sub(1, 3)) -- half a header
      conn:write(reply:sub(4, 20))
      conn:write(reply:sub(21))
    elseif message.method == "work" then
      eq(message.params, vim.empty_dict())
      conn:write(table.concat({
        encode({ jsonrpc = "2.0", method = "progress", params = { n = 1 } }),
        encode({ jsonrpc = "2.0", method = "progress", params = { n = 2, gone = vim.NIL } }),
        encode({ jsonrpc = "2.0", id = vim.NIL, error = { code = -32700, message = "stray" } }),
        encode({ jsonrpc = "2.0", id = message.id, result = { done = true } }),
      }))
    elseif message.method == "fail" then
      conn:write(encode({ jsonrpc = "2.0", id = message.id, error = { code = -32602, message = "bad params" } }))
    end
  end)
  local events = {}
  local client = rpc.new({
    path = path,
    on_notification = function(method, params)
      events[#events + 1] = method .. " " .. params.n .. " " .. tostring(params.gone)
    end,
    on_error = function(err)
      events[#events + 1] = "error " .. err.code .. " " .. err.message
    end,
  })
  local hello
  client:connect(function(err, result)
    hello = err or result
  end)
  vim.wait(3000, function()
    return hello ~= nil
  end, 10)
  eq(hello and hello.max_frame_size, 4096)
  eq(client.max_frame_size, 4096)
  client:request("work", {}, function(err, result)
    events[#events + 1] = "result " .. tostring(err) .. " " .. tostring(result and result.done)
  end)
  client:request("fail", { x = 1 }, function(err)
    events[#events + 1] = "failed " .. err.code .. " " .. err.message
  end)
  local too_big
  client:request("big", { text = string.rep("x", 5000) }, function(err)
    too_big = err.message
  end)
  vim.wait(3000, function()
    return #events >= 5 and too_big ~= nil
  end, 10)
  eq(events, {
    "progress 1 nil", "progress 2 nil", "error -32700 stray", "result nil true", "failed -32602 bad params",
  })
  assert(too_big:match("over claif%-codd's limit of 4096"), too_big)
  client:close()
  server:close()
end)

out:write(string.format("%d passed, %d failed\n", results.passed, results.failed))
out:flush()
if results.failed > 0 then
  vim.cmd("cquit 1")
else
  vim.cmd("qall!")
end
