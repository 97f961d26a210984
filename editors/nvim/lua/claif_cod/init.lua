-- claif-cod for Neovim: ask Codex about the current buffer through the claif-codd daemon.
--
--   require("claif_cod").setup({ socket = nil, session = nil, model = nil, ... })
--   :ClaifAsk {prompt}          (with a range: only those lines)
--   :ClaifInterrupt
--   :ClaifReset                 (forget the session: the next ask starts a new Codex thread)
--
-- Protocol: docs/protocol.md (length-prefixed JSON-RPC 2.0 over a Unix socket).

local rpc = require("claif_cod.rpc")
local output = require("claif_cod.output")

local M = {}

local defaults = {
  socket = nil, -- socket path; default: like the Python client (see M.socket_path)
  session = nil, -- session name, or function(cwd) -> name; g:claif_cod_session wins over it
  model = nil, -- options.model
  sandbox_mode = nil, -- options.sandbox_mode, e.g. "read-only", "workspace-write"
  approval_policy = nil, -- options.approval_policy, e.g. "untrusted", "on-request", "never"
  system = nil, -- developer instructions for a new session
  options = {}, -- any other CodexOptions members (timeout_s, codex_home, ...)
  split = "botright vsplit", -- how the output window opens
  approval_ui = "select", -- "select" (vim.ui.select) or "confirm" (vim.fn.confirm)
}

M.config = vim.deepcopy(defaults)

local client = nil -- the rpc client, once connected
local waiting = nil -- callbacks waiting for a connection in progress
local turns = {} -- request id -> turn state, for turns started on `client`
local running = {} -- session -> turn state while its request is in flight

--- The last turn this plugin finished: {session, status, text, usage, error, lines}. For scripts/tests.
M.last_turn = nil

local function notify(message, level)
  vim.notify("claif-cod: " .. message, level or vim.log.levels.INFO, { title = "claif-cod" })
end

local function notify_error(err)
  local message = type(err) == "table" and (err.message or vim.inspect(err)) or tostring(err)
  notify(message, vim.log.levels.ERROR)
end

function M.setup(opts)
  local old_socket = M.socket_path()
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  if client and M.socket_path() ~= old_socket then
    client:close()
  end
end

--- Where the daemon listens: setup's `socket`, else $CLAIF_COD_SOCKET, else
--- $XDG_RUNTIME_DIR/claif-cod/codd.sock, else ~/.cache/claif-cod/codd.sock (the Python client's order).
function M.socket_path()
  if M.config.socket and M.config.socket ~= "" then
    return vim.fn.expand(M.config.socket)
  end
  local explicit = vim.env.CLAIF_COD_SOCKET
  if explicit and explicit ~= "" then
    return explicit
  end
  local runtime = vim.env.XDG_RUNTIME_DIR
  if runtime and runtime ~= "" and vim.fn.isdirectory(runtime) == 1 then
    return runtime .. "/claif-cod/codd.sock"
  end
  local cache = vim.env.XDG_CACHE_HOME
  if not cache or cache == "" then
    cache = (vim.env.HOME or vim.loop.os_homedir()) .. "/.cache"
  end
  return cache .. "/claif-cod/codd.sock"
end

--- The session for this project: g:claif_cod_session, else setup's `session`, else
--- "nvim-<directory name>-<8 hex digits of the cwd's sha256>".
function M.session_name(cwd)
  cwd = cwd or vim.fn.getcwd()
  local name = vim.g.claif_cod_session
  if type(name) == "string" and name ~= "" then
    return name
  end
  local configured = M.config.session
  if type(configured) == "function" then
    configured = configured(cwd)
  end
  if type(configured) == "string" and configured ~= "" then
    return configured
  end
  local base = vim.fn.fnamemodify(cwd, ":t")
  if base == "" then
    base = "root"
  end
  return "nvim-" .. M.safe_name(base) .. "-" .. vim.fn.sha256(cwd):sub(1, 8)
end

--- `name` with every character other than an ASCII letter, a digit, ".", "_" or "-" replaced by
--- one "_": a UTF-8 sequence ("ü") is one character, a byte that is not UTF-8 one "_" of its own.
function M.safe_name(name)
  local replaced = name:gsub("[\194-\244][\128-\191]+", "_")
  return (replaced:gsub("[^A-Za-z0-9._-]", "_"))
end

-- --- approvals ---------------------------------------------------------------------------------

local DECISION_LABELS = {
  accept = "Accept",
  acceptForSession = "Accept for session",
  decline = "Decline",
  cancel = "Cancel",
}
-- confirm()'s buttons: "&" marks each one's key, and no two may share one (confirm() takes the first
-- button whose key was typed).
local DECISION_BUTTONS = {
  accept = "&Accept",
  acceptForSession = "Accept for &session",
  decline = "&Decline",
  cancel = "&Cancel",
}

local function approval_question(params)
  local kind = params.kind
  local lines = {}
  if kind == "command" then
    lines[1] = "Codex wants to run: " .. tostring(params.command or "?")
    if params.cwd then
      lines[#lines + 1] = "in " .. params.cwd
    end
  elseif kind == "file_change" then
    lines[1] = "Codex wants to change files:"
    for _, change in ipairs(params.changes or {}) do
      local line = "  " .. tostring(change.kind) .. " " .. tostring(change.path)
      if change.move_path then
        line = line .. " -> " .. change.move_path
      end
      lines[#lines + 1] = line
    end
    if params.grant_root then
      lines[#lines + 1] = "and write access under " .. params.grant_root .. " for the rest of the session"
    end
  else
    lines[1] = "Codex asks for approval (" .. tostring(kind) .. ")"
  end
  if params.reason then
    lines[#lines + 1] = "Reason: " .. params.reason
  end
  return table.concat(lines, "\n")
end

local function respond(approval_id, decision)
  if not (client and client:is_open()) then
    return
  end
  client:request("approval.respond", { approval_id = approval_id, decision = decision }, function(err, result)
    if err then
      notify_error(err)
    elseif result and result.ok == false then
      notify("the approval was already settled (answered too late?)", vim.log.levels.WARN)
    end
  end)
end

local function on_approval(params)
  local turn = turns[params.request_id]
  local decisions = params.available_decisions or { "accept", "acceptForSession", "decline", "cancel" }
  local question = approval_question(params)
  local function answer(decision)
    -- Dismissing the prompt declines, which lets Codex carry on without it.
    decision = decision or "decline"
    if turn then
      turn.approvals[#turn.approvals + 1] = { kind = params.kind, command = params.command, decision = decision }
    end
    respond(params.approval_id, decision)
  end
  if M.config.approval_ui == "confirm" then
    local labels = {}
    for i, decision in ipairs(decisions) do
      labels[i] = DECISION_BUTTONS[decision] or decision
    end
    local choice = vim.fn.confirm(question, table.concat(labels, "\n"), 0, "Question")
    answer(decisions[choice])
  else
    vim.ui.select(decisions, {
      prompt = question,
      kind = "claif_cod.approval",
      format_item = function(decision)
        return DECISION_LABELS[decision] or decision
      end,
    }, function(choice)
      answer(choice)
    end)
  end
end

-- --- notifications -----------------------------------------------------------------------------

local function on_session_event(params)
  local turn = turns[params.request_id]
  local event = params.event
  if not turn or type(event) ~= "table" then
    return
  end
  local out = turn.output
  local kind = event.type
  if kind == "text_delta" then
    out:delta(event.item_id, event.delta or "")
  elseif kind == "text_reset" then
    out:reset(event.item_id)
  elseif kind == "item_started" then
    out:item(event.item or {}, false)
  elseif kind == "item_completed" then
    out:item(event.item or {}, true)
  elseif kind == "usage" then
    turn.usage = event.usage
  elseif kind == "turn_started" then
    turn.turn_id = event.turn_id
  end
end

local function on_notification(method, params)
  if method == "session.event" then
    on_session_event(params)
  elseif method == "approval.requested" then
    on_approval(params)
  elseif method == "warning" then -- the request goes on (say, a retired approval_policy, replaced)
    notify(params.message, vim.log.levels.WARN)
  end
end

-- --- connection --------------------------------------------------------------------------------

--- Call `callback(err, client)` with a connected client, connecting (and saying hello) if needed.
function M.connect(callback)
  if client and client:is_open() then
    callback(nil, client)
    return
  end
  if waiting then
    waiting[#waiting + 1] = callback
    return
  end
  waiting = { callback }
  local candidate
  candidate = rpc.new({
    path = M.socket_path(),
    on_notification = on_notification,
    on_error = notify_error,
    on_close = function()
      if client == candidate then
        client = nil
      end
    end,
  })
  candidate:connect(function(err)
    local callbacks = waiting
    waiting = nil
    if not err then
      client = candidate
    end
    for _, cb in ipairs(callbacks) do
      cb(err, not err and candidate or nil)
    end
  end)
end

--- Close the connection to the daemon (it cancels whatever this editor had running).
function M.disconnect()
  if client then
    client:close()
    client = nil
  end
end

-- --- asking ------------------------------------------------------------------------------------

local function longest_backtick_run(lines)
  local longest = 0
  for _, line in ipairs(lines) do
    for run in line:gmatch("`+") do
      longest = math.max(longest, #run)
    end
  end
  return longest
end

--- The user turn for `prompt` about `lines` (1-based `first`..`last` of `buf`; whole = whole buffer).
function M.build_text(prompt, buf, first, last, whole)
  local lines = vim.api.nvim_buf_get_lines(buf, first - 1, last, false)
  local name = vim.api.nvim_buf_get_name(buf)
  local where
  if name == "" then
    where = "an unnamed buffer"
  else
    where = "`" .. vim.fn.fnamemodify(name, ":.") .. "`"
  end
  if not whole then
    where = where .. " (lines " .. first .. "-" .. last .. ")"
  end
  local fence = string.rep("`", math.max(3, longest_backtick_run(lines) + 1))
  local filetype = vim.api.nvim_buf_get_option(buf, "filetype")
  local parts = { prompt, "", "From " .. where .. ":", fence .. filetype }
  vim.list_extend(parts, lines)
  parts[#parts + 1] = fence
  return table.concat(parts, "\n")
end

local function codex_options(cwd)
  local options = vim.deepcopy(M.config.options or {})
  options.working_dir = cwd
  options.model = options.model or M.config.model
  options.sandbox_mode = options.sandbox_mode or M.config.sandbox_mode
  options.approval_policy = options.approval_policy or M.config.approval_policy
  return options
end

local function finish(turn, err, result)
  running[turn.session] = nil
  if turn.request_id then
    turns[turn.request_id] = nil
  end
  local summary = { session = turn.session, prompt = turn.prompt, approvals = turn.approvals }
  if err then
    summary.status = "error"
    summary.error = err
    turn.output:finish("error", turn.usage, err.message)
    notify_error(err)
  else
    summary.status = result.status
    summary.text = result.text
    summary.usage = result.usage or turn.usage
    summary.thread_id = result.thread_id
    turn.output:finish(result.status or "completed", summary.usage)
    if result.status == "interrupted" then
      notify("turn interrupted")
    end
  end
  summary.lines = turn.output:lines()
  M.last_turn = summary
  if #vim.api.nvim_get_autocmds({ event = "User", pattern = "ClaifCodTurnDone" }) > 0 then
    vim.cmd("doautocmd <nomodeline> User ClaifCodTurnDone")
  end
end

--- Send `prompt` with lines `first`..`last` of the current buffer (all of it when `range` is 0).
function M.ask(prompt, opts)
  opts = opts or {}
  if prompt == nil or prompt:match("^%s*$") then
    notify("give a prompt: :ClaifAsk {prompt}", vim.log.levels.ERROR)
    return
  end
  local buf = vim.api.nvim_get_current_buf()
  local whole = (opts.range or 0) == 0
  local first = whole and 1 or opts.line1
  local last = whole and vim.api.nvim_buf_line_count(buf) or opts.line2
  local cwd = vim.fn.getcwd()
  local session = M.session_name(cwd)
  if running[session] then
    notify("a turn is already running in session " .. session .. " (:ClaifInterrupt stops it)",
      vim.log.levels.WARN)
    return
  end
  local text = M.build_text(prompt, buf, first, last, whole)
  local turn = { session = session, prompt = prompt, approvals = {} }
  running[session] = turn
  turn.output = output.turn(session, prompt, cwd)
  output.show(turn.output.buf, M.config.split)
  M.connect(function(err, conn)
    if err then
      finish(turn, err)
      return
    end
    local params = { session_id = session, text = text, options = codex_options(cwd) }
    if M.config.system then
      params.system = M.config.system
    end
    turn.request_id = conn:request("session.send", params, function(send_err, result)
      finish(turn, send_err, result)
    end)
    if turn.request_id then
      turns[turn.request_id] = turn
    end
  end)
end

--- Interrupt the turn running in this project's session (it ends with status "interrupted").
function M.interrupt()
  local session = M.session_name()
  M.connect(function(err, conn)
    if err then
      notify_error(err)
      return
    end
    conn:request("turn.interrupt", { session_id = session }, function(interrupt_err, result)
      if interrupt_err then
        notify_error(interrupt_err)
      elseif not (result and result.interrupted) then
        notify("nothing is running in session " .. session)
      end
    end)
  end)
end

--- Forget this project's session (session.close): the next :ClaifAsk starts a new Codex thread.
function M.reset()
  local session = M.session_name()
  M.connect(function(err, conn)
    if err then
      notify_error(err)
      return
    end
    conn:request("session.close", { session_id = session }, function(close_err, result)
      if close_err then
        notify_error(close_err)
      elseif result and result.closed then
        notify("closed session " .. session)
      else
        notify("no session " .. session .. " to close")
      end
    end)
  end)
end

return M
