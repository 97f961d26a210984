-- The scratch buffer a session's turns stream into, one section per turn:
--
--   ## <prompt>
--
--   <agent text, streamed>
--   $ <command>            (a command Codex ran; "(exit N)", "(declined)"… once it ended otherwise than fine)
--   ~ <path>               (a file Codex changed, relative to the working directory when under it)
--
--   <more agent text>      (each agent message after something else is a paragraph of its own)
--
--   _completed · tokens: 1200 prompt (1000 cached) + 12 completion = 1212 total_
--
-- A turn is a list of segments (text of one agent message, or one line about an item). A text
-- delta is appended where its message ends (whatever its length, a delta costs the same); an
-- item's line, a message's final text or a `text_reset` rewrites only that segment.

local M = {}

local function buffer_name(session)
  return "claif://" .. session
end

local function set_lines(buf, first, last, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", true)
  vim.api.nvim_buf_set_lines(buf, first, last, false, lines)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
end

local function configure(buf)
  vim.api.nvim_buf_set_option(buf, "buftype", "nofile")
  vim.api.nvim_buf_set_option(buf, "bufhidden", "hide")
  vim.api.nvim_buf_set_option(buf, "swapfile", false)
  vim.api.nvim_buf_set_option(buf, "modifiable", false)
  vim.api.nvim_buf_set_option(buf, "filetype", "markdown")
end

--- The session's output buffer, created if needed (not shown).
function M.buffer(session)
  local name = buffer_name(session)
  for _, existing in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(existing) == name then
      if not vim.api.nvim_buf_is_loaded(existing) then
        vim.fn.bufload(existing) -- :bdelete unloaded it (emptied it, and reset its options)
        configure(existing)
      end
      return existing
    end
  end
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, name)
  configure(buf)
  return buf
end

--- Show `buf` in a split (`command`, e.g. "botright vsplit") unless a window already shows it;
--- the cursor stays where it was.
function M.show(buf, command)
  -- This tab page only: a window in another one is out of sight.
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == buf then
      return win
    end
  end
  local previous = vim.api.nvim_get_current_win()
  vim.cmd(command)
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, buf)
  vim.api.nvim_win_set_option(win, "wrap", true)
  vim.api.nvim_win_set_option(win, "linebreak", true)
  vim.api.nvim_win_set_option(win, "number", false)
  if vim.api.nvim_win_is_valid(previous) then
    vim.api.nvim_set_current_win(previous)
  end
  return win
end

local Turn = {}
Turn.__index = Turn

--- Start a new section for a turn asking `prompt` at the end of `session`'s buffer; file paths under
--- `cwd` (Codex's working directory) are shown relative to it.
function M.turn(session, prompt, cwd)
  local self = setmetatable({ session = session, cwd = cwd, segments = {}, by_id = {}, footer = {} }, Turn)
  local first_line = vim.split(prompt, "\n", { plain = true })[1]
  self.header = { "## " .. first_line, "" }
  self:_open_buffer()
  return self
end

-- A segment is one agent message (`parts`: its text as received, joined only when needed) or one
-- line about an item (`text`). `line` is its first buffer line (0-based), `count` how many it has,
-- `last_len` the byte length of the last one (where the next delta goes).

local function segment_lines(segment)
  if segment.kind == "line" then
    return { segment.text }
  end
  local lines = vim.split(table.concat(segment.parts), "\n", { plain = true })
  if segment.blank then
    table.insert(lines, 1, "") -- a paragraph of its own: markdown would join it to what precedes
  end
  return lines
end

-- The buffer line after the segments, where the next segment or the footer goes.
function Turn:_end_line()
  local last = self.segments[#self.segments]
  return last and last.line + last.count or self.start + #self.header
end

-- Write `lines` over rows first..last (end-exclusive) as `segment`'s, and move the segments after
-- it by the change in its line count.
function Turn:_write(index, lines, first, last)
  local segment = self.segments[index]
  set_lines(self.buf, first, last, lines)
  local shift = #lines - (last - first)
  segment.count = segment.count + shift
  segment.last_len = #lines[#lines]
  for i = index + 1, #self.segments do
    self.segments[i].line = self.segments[i].line + shift
  end
end

-- False (after rebuilding the whole turn) if the user deleted or wiped the buffer.
function Turn:_buffer_ok()
  if vim.api.nvim_buf_is_valid(self.buf) and vim.api.nvim_buf_is_loaded(self.buf) then
    return true
  end
  self:_open_buffer() -- start over, this turn included
  return false
end

-- Re-render segment `index` in place (its text changed).
function Turn:_rerender(index)
  if self:_buffer_ok() then
    local segment = self.segments[index]
    self:_write(index, segment_lines(segment), segment.line, segment.line + segment.count)
    self:_follow()
  end
end

-- Rewrite the whole turn below its header (a new or reloaded buffer).
function Turn:_render_all()
  local line = self.start + #self.header
  set_lines(self.buf, line, -1, {})
  for i, segment in ipairs(self.segments) do
    segment.line, segment.count = line, 0
    self:_write(i, segment_lines(segment), line, line)
    line = line + segment.count
  end
  set_lines(self.buf, line, -1, self.footer)
  self:_follow()
end

function Turn:_open_buffer()
  local buf = M.buffer(self.session)
  self.buf = buf
  local count = vim.api.nvim_buf_line_count(buf)
  local empty = count == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, false)[1] == ""
  if empty then
    self.start = 0
    set_lines(buf, 0, -1, self.header)
  else
    self.start = count + 1 -- one blank line between turns
    set_lines(buf, count, count, vim.list_extend({ "" }, self.header))
  end
  self:_render_all()
end

-- Windows showing the buffer (other than the current one) follow the end of the output. A window
-- already there is left alone: setting the cursor recomputes how a long wrapped line folds, which
-- would cost each delta of a one-line answer the length of the answer.
function Turn:_follow()
  local last = vim.api.nvim_buf_line_count(self.buf)
  local current = vim.api.nvim_get_current_win()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if win ~= current and vim.api.nvim_win_get_buf(win) == self.buf
      and not vim.deep_equal(vim.api.nvim_win_get_cursor(win), { last, 0 }) then
      vim.api.nvim_win_set_cursor(win, { last, 0 })
    end
  end
end

-- The index of segment `id` (nil: none), added after the others (a line segment showing `text`)
-- if new; the second result says it is new.
function Turn:_get(id, kind, text)
  local index = id and self.by_id[id]
  if index then
    return index, false
  end
  local segment = { id = id, kind = kind, parts = {}, text = text, count = 0, last_len = 0 }
  -- A message after anything else starts a paragraph (two messages of a turn, or text after a command).
  segment.blank = kind == "text" and #self.segments > 0
  segment.line = self:_end_line()
  index = #self.segments + 1
  self.segments[index] = segment
  if id then
    self.by_id[id] = index
  end
  if self:_buffer_ok() then
    self:_write(index, segment_lines(segment), segment.line, segment.line)
    self:_follow()
  end
  return index, true
end

--- More text for agent message `item_id`.
function Turn:delta(item_id, delta)
  local index = self:_get(item_id, "text")
  local segment = self.segments[index]
  segment.parts[#segment.parts + 1] = delta
  if delta == "" or not self:_buffer_ok() then
    return
  end
  -- Append only: the delta goes at the end of the message's last line, so a long answer costs
  -- the same per delta as a short one.
  local row = segment.line + segment.count - 1
  local pieces = vim.split(delta, "\n", { plain = true })
  vim.api.nvim_buf_set_option(self.buf, "modifiable", true)
  vim.api.nvim_buf_set_text(self.buf, row, segment.last_len, row, segment.last_len, pieces)
  vim.api.nvim_buf_set_option(self.buf, "modifiable", false)
  local added = #pieces - 1
  segment.count = segment.count + added
  segment.last_len = (added == 0 and segment.last_len or 0) + #pieces[#pieces]
  for i = index + 1, #self.segments do
    self.segments[i].line = self.segments[i].line + added
  end
  self:_follow()
end

--- Codex retried: forget the text received so far for `item_id`.
function Turn:reset(item_id)
  local index = self.by_id[item_id]
  if index then
    self.segments[index].parts = {}
    self:_rerender(index)
  end
end

-- A command (or path) on one line: a multi-line one (a heredoc, a script) shows its first line
-- and "…", as nvim_buf_set_lines takes no newline and the item's full text is in the daemon's log.
local function one_line(text)
  local first, rest = text:match("^([^\r\n]*)[\r\n](.*)$")
  if not first then
    return text
  end
  return rest:match("%S") and first .. " …" or first
end

local function command_line(item)
  local line = "$ " .. one_line(tostring(item.command or ""))
  local status = item.status
  local exit_code = item.exit_code
  if status == "declined" then
    line = line .. "  (declined)"
  elseif type(exit_code) == "number" and exit_code ~= 0 then
    line = line .. "  (exit " .. exit_code .. ")" -- says more than "failed", which it also is
  elseif status == "failed" then
    line = line .. "  (failed)"
  end
  return line
end

-- `path` relative to `cwd` when under it (Codex reports absolute paths).
local function display_path(path, cwd)
  path = one_line(tostring(path))
  if cwd and cwd ~= "" then
    local prefix = cwd:sub(-1) == "/" and cwd or cwd .. "/"
    if path:sub(1, #prefix) == prefix and #path > #prefix then
      return path:sub(#prefix + 1)
    end
  end
  return path
end

-- Set line segment `id` to `text`.
function Turn:_line(id, text)
  local index, new = self:_get(id, "line", text)
  local segment = self.segments[index]
  if not new and segment.text ~= text then
    segment.text = text
    self:_rerender(index)
  end
end

--- An item started or completed: agent text, a command line, file-change lines.
function Turn:item(item, completed)
  local kind = item.type
  if kind == "agent_message" then
    local index = self:_get(item.id, "text")
    local segment = self.segments[index]
    -- The final text wins over what the deltas built.
    if completed and type(item.text) == "string" and table.concat(segment.parts) ~= item.text then
      segment.parts = { item.text }
      self:_rerender(index)
    end
  elseif kind == "command_execution" then
    self:_line(item.id, command_line(item))
  elseif kind == "file_change" then
    for i, change in ipairs(item.changes or {}) do
      local line = "~ " .. display_path(change.path, self.cwd)
      if change.kind == "add" or change.kind == "delete" then
        line = line .. "  (" .. change.kind .. ")"
      end
      if completed and item.status ~= nil and item.status ~= "completed" then
        line = line .. "  (" .. tostring(item.status) .. ")"
      end
      self:_line(item.id .. "#" .. i, line)
    end
  end
end

local function usage_text(usage)
  if type(usage) ~= "table" or not usage.total_tokens or usage.total_tokens == 0 then
    return "" -- no usage, or none counted (an interrupted turn reports zeros)
  end
  local prompt = usage.prompt_tokens or 0
  local text = " · tokens: " .. prompt .. " prompt"
  if type(usage.cached_tokens) == "number" and usage.cached_tokens > 0 then
    text = text .. " (" .. usage.cached_tokens .. " cached)"
  end
  return text .. " + " .. (usage.completion_tokens or 0) .. " completion = " .. (usage.total_tokens or 0) .. " total"
end

--- The turn ended: `status` ("completed", "interrupted", "failed" or "error") and its usage.
function Turn:finish(status, usage, message)
  local summary = status .. usage_text(usage)
  if message then
    summary = summary .. ": " .. message:gsub("\n", " ")
  end
  self.footer = { "", "_" .. summary .. "_" }
  if self:_buffer_ok() then
    set_lines(self.buf, self:_end_line(), -1, self.footer)
    self:_follow()
  end
end

--- The buffer's lines of this turn, header and footer included.
function Turn:lines()
  if not vim.api.nvim_buf_is_valid(self.buf) then
    return {}
  end
  return vim.api.nvim_buf_get_lines(self.buf, self.start, -1, false)
end

M.buffer_name = buffer_name
return M
