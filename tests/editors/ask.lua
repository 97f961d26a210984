-- Drives the plugin inside a headless Neovim against a real claif-codd (started by test_nvim.py).
--
--   CLAIF_TEST_SCENARIO  ask | approval | approval_confirm | approval_patch | interrupt | retired_approval |
--                        bad_params | no_daemon | commands
--   CLAIF_TEST_CONFIRM   the label vim.fn.confirm() picks (default "Decline")
--   CLAIF_TEST_OUT       where to write the JSON report
--
-- Neovim runs in the test's work directory, so getcwd() is the Codex working dir. The script
-- stubs vim.notify and vim.ui.select (recording what they were given; approvals answer
-- "Decline"), runs the user commands, waits for each turn to end, records the output buffer and a
-- timeline of its changes, writes the report and quits.

local scenario = assert(vim.env.CLAIF_TEST_SCENARIO, "CLAIF_TEST_SCENARIO is not set")
local out_path = assert(vim.env.CLAIF_TEST_OUT, "CLAIF_TEST_OUT is not set")
local WAIT_MS = 60000

local report = { scenario = scenario, notifications = {}, selects = {}, turns = {}, timeline = {} }

local function now_ms()
  return vim.loop.hrtime() / 1e6
end

vim.notify = function(msg, level)
  report.notifications[#report.notifications + 1] = { message = msg, level = level }
end

vim.ui.select = function(items, opts, on_choice)
  local labels = {}
  for i, item in ipairs(items) do
    labels[i] = opts.format_item and opts.format_item(item) or tostring(item)
  end
  report.selects[#report.selects + 1] = { prompt = opts.prompt, kind = opts.kind, items = items, labels = labels }
  for i, label in ipairs(labels) do
    if label == "Decline" then
      return on_choice(items[i], i)
    end
  end
  on_choice(nil, nil)
end

-- confirm() answers with the first choice whose label (without "&") is CLAIF_TEST_CONFIRM.
vim.fn.confirm = function(msg, choices, default, kind)
  report.confirms = report.confirms or {}
  report.confirms[#report.confirms + 1] = { msg = msg, choices = choices, default = default, kind = kind }
  local wanted = vim.env.CLAIF_TEST_CONFIRM or "Decline"
  local index = 0
  for label in (choices .. "\n"):gmatch("(.-)\n") do
    index = index + 1
    if label:gsub("&", "") == wanted then
      return index
    end
  end
  return 0
end

vim.cmd("runtime! plugin/claif_cod.lua")
local claif = require("claif_cod")
local output = require("claif_cod.output")

local function write_report()
  local file = assert(io.open(out_path, "w"))
  file:write(vim.json.encode(report))
  file:close()
end

local function finish()
  write_report()
  vim.cmd("qall!")
end

-- Record every change of `buf`: time, line count, byte count.
local function watch(buf)
  vim.api.nvim_buf_attach(buf, false, {
    on_lines = function(_, b)
      local count = vim.api.nvim_buf_line_count(b)
      report.timeline[#report.timeline + 1] = {
        t = now_ms(),
        lines = count,
        bytes = vim.api.nvim_buf_get_offset(b, count),
      }
    end,
  })
end

-- Wait until the plugin reports the turn started at `started` done, and record it.
local function wait_turn(started)
  local done = vim.wait(WAIT_MS, function()
    return claif.last_turn ~= nil
  end, 10)
  local turn = claif.last_turn or { status = "timeout" }
  turn.elapsed_ms = now_ms() - started
  turn.done = done
  turn.timeline_end = #report.timeline -- changes of the output buffer up to this turn's end
  report.turns[#report.turns + 1] = turn
  return turn
end

-- Run an Ex command that starts a turn and wait for it.
local function ask(command)
  claif.last_turn = nil
  local started = now_ms()
  vim.cmd(command)
  return wait_turn(started)
end

local function open_example()
  vim.cmd("edit example.py")
  vim.cmd("setlocal filetype=python")
end

local function record_windows()
  report.windows = {}
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    local buf = vim.api.nvim_win_get_buf(win)
    report.windows[#report.windows + 1] = {
      name = vim.api.nvim_buf_get_name(buf),
      buftype = vim.api.nvim_buf_get_option(buf, "buftype"),
      filetype = vim.api.nvim_buf_get_option(buf, "filetype"),
      modifiable = vim.api.nvim_buf_get_option(buf, "modifiable"),
      current = win == vim.api.nvim_get_current_win(),
    }
  end
end

local function record_output()
  local buf = output.buffer(claif.session_name())
  report.buffer = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local scenarios = {}

function scenarios.ask()
  open_example()
  report.session = claif.session_name()
  report.socket = claif.socket_path()
  watch(output.buffer(report.session))
  ask("ClaifAsk explain")
  record_windows()
  ask("2,3ClaifAsk summarize")
  record_output()
  -- :ClaifReset forgets the session; a second one finds nothing to close.
  for _ = 1, 2 do
    local before = #report.notifications
    vim.cmd("ClaifReset")
    vim.wait(WAIT_MS, function()
      return #report.notifications > before
    end, 10)
  end
end

function scenarios.approval()
  claif.setup({ approval_policy = "untrusted", session = "nvim-approval" })
  open_example()
  ask("ClaifAsk [[tool:touch x.txt]] make the file")
  record_output()
end

function scenarios.approval_confirm()
  claif.setup({
    approval_policy = "untrusted", sandbox_mode = "workspace-write", approval_ui = "confirm", session = "nvim-confirm",
  })
  open_example()
  ask("ClaifAsk [[tool:touch x.txt]] make the file")
  record_output()
end

function scenarios.approval_patch()
  claif.setup({ approval_policy = "untrusted", sandbox_mode = "workspace-write", session = "nvim-patch" })
  open_example()
  claif.last_turn = nil
  local started = now_ms()
  local patch = "*** Begin Patch\n*** Update File: example.py\n*** Move to: renamed.py\n@@\n-    return a + b\n"
    .. "+    return b + a\n*** End Patch"
  claif.ask("[[tool:apply_patch <<'EOF'\n" .. patch .. "\nEOF]] go", { range = 0 })
  wait_turn(started)
end

function scenarios.interrupt()
  claif.setup({ session = "nvim-interrupt" })
  open_example()
  local buf = output.buffer("nvim-interrupt")
  claif.last_turn = nil
  local started = now_ms()
  vim.cmd("ClaifAsk [[long:300]] [[slow:50]] count")
  -- Interrupt once a few words have streamed in.
  report.streaming = vim.wait(WAIT_MS, function()
    return table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n"):match("w3") ~= nil
  end, 10)
  vim.cmd("ClaifInterrupt")
  wait_turn(started)
  record_output()
end

function scenarios.retired_approval()
  claif.setup({ approval_policy = "on-failure", session = "nvim-retired" })
  open_example()
  ask("ClaifAsk explain")
  record_output()
end

function scenarios.bad_params()
  claif.setup({ options = { timeout_s = "soon" } })
  open_example()
  ask("ClaifAsk explain")
  record_output()
end

function scenarios.no_daemon()
  open_example()
  ask("ClaifAsk explain")
  record_output()
end

-- A multi-line command (a heredoc, as Codex often runs) and a failing one, both run without asking.
function scenarios.commands()
  claif.setup({ approval_policy = "never", sandbox_mode = "workspace-write", session = "nvim-commands" })
  open_example()
  claif.last_turn = nil
  local started = now_ms()
  claif.ask("[[tool:echo alpha\necho beta]] two lines", { range = 0 })
  wait_turn(started)
  ask("ClaifAsk [[tool:exit 3]] fail")
  record_output()
end

local ok, err = pcall(scenarios[scenario])
if not ok then
  report.script_error = tostring(err)
end
finish()
