-- The scratch buffer a session's turns stream into, one section per turn:
--
--   ## <prompt>
--
--   <agent text, streamed>
--   $ <command>            (a command Codex ran; "(exit N)", "(declined)"… once it ended otherwise than fine)
--   ~ <path>               (a file Codex changed)
--
--   _completed · tokens: 1200 prompt (1000 cached) + 12 completion = 1212 total_
--
-- A turn is a list of segments (text of one agent message, or one line about an item). Rendering
-- rewrites the buffer from the first changed segment to the end, so a text delta, which nearly
-- always lands in the last segment, costs a few lines, and `text_reset` can drop a message's text
-- wherever it is.

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
  for _, win in ipairs(vim.api.nvim_list_wins()) do
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

--- Start a new section for a turn asking `prompt` at the end of `session`'s buffer.
function M.turn(session, prompt)
  local self = setmetatable({ session = session, segments = {}, by_id = {}, footer = {} }, Turn)
  local first_line = vim.split(prompt, "\n", { plain = true })[1]
  self.header = { "## " .. first_line, "" }
  self:_open_buffer()
  return self
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
  for _, segment in ipairs(self.segments) do
    segment.line = nil
  end
  self:_render(1)
end

local function segment_lines(segment)
  if segment.kind == "text" then
    return vim.split(segment.text, "\n", { plain = true })
  end
  return { segment.text }
end

-- Rewrite the buffer from segment `from` on (and the footer).
function Turn:_render(from)
  if not (vim.api.nvim_buf_is_valid(self.buf) and vim.api.nvim_buf_is_loaded(self.buf)) then
    self:_open_buffer() -- the user deleted or wiped it: start over, this turn included
    return
  end
  local line = self.start + #self.header
  if from > 1 then
    local previous = self.segments[from - 1]
    line = previous.line + #segment_lines(previous)
  end
  local lines = {}
  for i = from, #self.segments do
    local segment = self.segments[i]
    segment.line = line + #lines
    vim.list_extend(lines, segment_lines(segment))
  end
  vim.list_extend(lines, self.footer)
  set_lines(self.buf, line, -1, lines)
  self:_follow()
end

-- Windows showing the buffer (other than the current one) follow the end of the output.
function Turn:_follow()
  local last = vim.api.nvim_buf_line_count(self.buf)
  local current = vim.api.nvim_get_current_win()
  for _, win in ipairs(vim.api.nvim_list_wins()) do
    if win ~= current and vim.api.nvim_win_get_buf(win) == self.buf then
      vim.api.nvim_win_set_cursor(win, { last, 0 })
    end
  end
end

function Turn:_segment(id, kind, text)
  local index = id and self.by_id[id]
  if index then
    local segment = self.segments[index]
    if segment.text ~= text then
      segment.text = text
      self:_render(index)
    end
    return segment
  end
  local segment = { id = id, kind = kind, text = text }
  self.segments[#self.segments + 1] = segment
  if id then
    self.by_id[id] = #self.segments
  end
  self:_render(#self.segments)
  return segment
end

--- More text for agent message `item_id`.
function Turn:delta(item_id, delta)
  local index = self.by_id[item_id]
  local text = index and self.segments[index].text or ""
  self:_segment(item_id, "text", text .. delta)
end

--- Codex retried: forget the text received so far for `item_id`.
function Turn:reset(item_id)
  if self.by_id[item_id] then
    self:_segment(item_id, "text", "")
  end
end

local function command_line(item)
  local line = "$ " .. (item.command or "")
  local status = item.status
  local exit_code = item.exit_code
  if status == "declined" or status == "failed" then
    line = line .. "  (" .. status .. ")"
  elseif type(exit_code) == "number" and exit_code ~= 0 then
    line = line .. "  (exit " .. exit_code .. ")"
  end
  return line
end

--- An item started or completed: agent text, a command line, file-change lines.
function Turn:item(item, completed)
  local kind = item.type
  if kind == "agent_message" then
    local index = self.by_id[item.id]
    local text = index and self.segments[index].text or ""
    if completed and type(item.text) == "string" then
      text = item.text -- the final text wins over what the deltas built
    end
    self:_segment(item.id, "text", text)
  elseif kind == "command_execution" then
    self:_segment(item.id, "line", command_line(item))
  elseif kind == "file_change" then
    for i, change in ipairs(item.changes or {}) do
      local line = "~ " .. tostring(change.path)
      if change.kind == "add" or change.kind == "delete" then
        line = line .. "  (" .. change.kind .. ")"
      end
      if completed and item.status ~= nil and item.status ~= "completed" then
        line = line .. "  (" .. tostring(item.status) .. ")"
      end
      self:_segment(item.id .. "#" .. i, "line", line)
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
  self:_render(#self.segments + 1)
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
