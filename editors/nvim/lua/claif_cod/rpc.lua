-- A JSON-RPC 2.0 client for claif-codd over a Unix socket (libuv pipe), Neovim 0.7 APIs only.
--
-- Every callback this module makes (request results, notifications, close) runs on the main loop
-- through vim.schedule, so callers may touch buffers, windows and the UI freely. libuv callbacks
-- themselves only feed the frame decoder, which is plain Lua.

local frame = require("claif_cod.frame")
local trust = require("claif_cod.trust")

local uv = vim.loop
local M = {}

M.PROTOCOL_VERSION = 1
-- The claif-cod release this plugin ships with (hello's informational package_version); a test
-- compares it with claif_cod.__version__ so that it is bumped with the package.
M.PACKAGE_VERSION = "0.3.0"
M.CLIENT_NAME = "claif-cod.nvim"

local function json_encode(value)
  if vim.json then
    return vim.json.encode(value)
  end
  return vim.fn.json_encode(value)
end

local function json_decode(text)
  if vim.json then
    return vim.json.decode(text, { luanil = { object = true } })
  end
  return vim.fn.json_decode(text)
end

M.json_encode = json_encode
M.json_decode = json_decode

--- `nil` for JSON null (vim.NIL), else the value.
function M.value(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local Client = {}
Client.__index = Client

--- A client for the socket at `opts.path`. Handlers (all optional, all run on the main loop):
---   on_notification(method, params)   a notification from the daemon
---   on_error(err)                     an error response with a null id (err = {code, message})
---   on_close(reason)                  the connection ended; reason is nil for a close we asked for
function M.new(opts)
  return setmetatable({
    path = opts.path,
    client_name = opts.client_name or M.CLIENT_NAME,
    on_notification = opts.on_notification or function() end,
    on_error = opts.on_error or function() end,
    on_close = opts.on_close or function() end,
    pipe = nil,
    state = "new", -- new -> connecting -> ready -> closed
    next_id = 1,
    pending = {}, -- id -> callback(err, result)
    decoder = frame.decoder(),
    max_frame_size = frame.MAX_FRAME_SIZE,
    hello = nil,
  }, Client)
end

function Client:is_open()
  return self.state == "ready"
end

local function message_error(code, message)
  return { code = code, message = message }
end

M.CONNECT_TIMEOUT_MS = 10000

--- Connect and say hello; `callback(err, hello_result)` runs on the main loop, once.
function Client:connect(callback)
  assert(self.state == "new", "claif_cod.rpc: connect() called twice")
  self.state = "connecting"
  local answered = false
  local function finish(err, result)
    if not answered then
      answered = true
      callback(err, result)
    end
  end
  -- Like the Python client: a socket another user could have planted is never connected to.
  local untrusted = trust.check_socket(self.path)
  if untrusted then
    vim.schedule(function()
      self:_shutdown(nil)
      finish(message_error(-1, untrusted))
    end)
    return
  end
  vim.defer_fn(function()
    if self.state == "connecting" then
      local reason = string.format("claif-codd on %s did not answer within %g s", self.path, M.CONNECT_TIMEOUT_MS / 1000)
      self:_shutdown(reason)
      finish(message_error(-1, reason))
    end
  end, M.CONNECT_TIMEOUT_MS)
  local pipe = uv.new_pipe(false)
  self.pipe = pipe
  pipe:connect(self.path, function(err)
    if err then
      vim.schedule(function()
        self:_shutdown(nil)
        local message
        if err:match("ENOENT") or err:match("ECONNREFUSED") then
          message = string.format("claif-codd is not running (no daemon on %s); start it with `claif-codd start`", self.path)
        else
          message = string.format("cannot connect to claif-codd on %s: %s", self.path, err)
        end
        finish(message_error(-1, message))
      end)
      return
    end
    pipe:read_start(function(read_err, data)
      self:_on_read(read_err, data)
    end)
    vim.schedule(function()
      if self.state ~= "connecting" then
        return -- timed out meanwhile
      end
      local foreign = trust.check_peer(pipe, self.path)
      if foreign then -- another user's listener: send it nothing
        self:_shutdown(nil)
        finish(message_error(-1, foreign))
        return
      end
      self:_request("hello", {
        protocol_version = M.PROTOCOL_VERSION,
        package_version = M.PACKAGE_VERSION,
        client_name = self.client_name,
        capabilities = {},
      }, function(hello_err, result)
        if hello_err then
          self:close()
          finish(hello_err)
          return
        end
        if result.protocol_version ~= M.PROTOCOL_VERSION then
          self:close()
          finish(message_error(-32003, string.format(
            "claif-codd speaks protocol version %s, this plugin %d; restart it with `claif-codd stop`",
            tostring(result.protocol_version), M.PROTOCOL_VERSION)))
          return
        end
        self.hello = result
        if type(M.value(result.max_frame_size)) == "number" then
          self.max_frame_size = result.max_frame_size
          self.decoder.max_size = result.max_frame_size
        end
        self.state = "ready"
        finish(nil, result)
      end)
    end)
  end)
end

-- libuv context: no Neovim API here except vim.schedule.
function Client:_on_read(err, data)
  if err or data == nil then
    vim.schedule(function()
      self:_shutdown(err and ("connection to claif-codd failed: " .. err) or "claif-codd closed the connection")
    end)
    return
  end
  local bodies, broken = self.decoder:feed(data)
  if #bodies > 0 or broken then
    vim.schedule(function()
      for _, body in ipairs(bodies) do
        self:_dispatch(body)
      end
      if broken then
        self:_shutdown("unreadable data from claif-codd: " .. broken)
      end
    end)
  end
end

function Client:_dispatch(body)
  local ok, message = pcall(json_decode, body)
  if not ok or type(message) ~= "table" then
    vim.notify("claif-cod: skipped an undecodable message from claif-codd", vim.log.levels.WARN)
    return
  end
  local id = M.value(message.id)
  if message.method ~= nil and id == nil then
    local handled, failure = pcall(self.on_notification, message.method, M.value(message.params) or {})
    if not handled then
      vim.notify("claif-cod: error handling " .. tostring(message.method) .. ": " .. tostring(failure),
        vim.log.levels.ERROR)
    end
    return
  end
  local err = M.value(message.error)
  if id == nil then
    if err then
      self.on_error(err)
    end
    return
  end
  local callback = self.pending[id]
  if callback == nil then
    return
  end
  self.pending[id] = nil
  if err then
    callback({ code = M.value(err.code), message = M.value(err.message) or "unknown error", data = M.value(err.data) })
  else
    callback(nil, M.value(message.result))
  end
end

function Client:_write(message)
  local ok, body = pcall(json_encode, message)
  if not ok then
    return "cannot encode message: " .. tostring(body)
  end
  if #body > self.max_frame_size then
    return string.format("message of %d bytes is over claif-codd's limit of %d", #body, self.max_frame_size)
  end
  self.pipe:write(frame.encode(body, self.max_frame_size))
  return nil
end

function Client:_request(method, params, callback)
  local id = self.next_id
  self.next_id = id + 1
  if params ~= nil and next(params) == nil then
    params = vim.empty_dict()
  end
  self.pending[id] = callback
  local problem = self:_write({ jsonrpc = "2.0", id = id, method = method, params = params })
  if problem then
    self.pending[id] = nil
    vim.schedule(function()
      callback(message_error(-1, problem))
    end)
  end
  return id
end

--- Send a request; `callback(err, result)` runs on the main loop. Returns the request id.
--- err is {code, message, data?}: the daemon's error object, or code -1 for a local failure.
function Client:request(method, params, callback)
  if self.state ~= "ready" then
    vim.schedule(function()
      callback(message_error(-1, "not connected to claif-codd"))
    end)
    return nil
  end
  return self:_request(method, params, callback)
end

--- Send a notification (no reply), e.g. "$/cancel".
function Client:notify(method, params)
  if self.state ~= "ready" then
    return
  end
  self:_write({ jsonrpc = "2.0", method = method, params = params })
end

function Client:_shutdown(reason)
  if self.state == "closed" then
    return
  end
  self.state = "closed"
  if self.pipe and not self.pipe:is_closing() then
    self.pipe:read_stop()
    self.pipe:close()
  end
  local pending = self.pending
  self.pending = {}
  local lost = message_error(-1, reason or "connection to claif-codd closed")
  for _, callback in pairs(pending) do
    callback(lost)
  end
  self.on_close(reason)
end

--- Close the connection; the daemon cancels whatever this connection had in flight.
function Client:close()
  self:_shutdown(nil)
end

return M
