-- Framing for the claif-codd protocol: a 4-byte big-endian body length, then the UTF-8 JSON body.
--
-- Pure Lua 5.1 (LuaJIT): no string.pack, no bit library, no Neovim API, so it can run in a libuv
-- callback and be unit-tested on its own. See docs/protocol.md, "Framing".

local M = {}

M.MAX_FRAME_SIZE = 16 * 1024 * 1024 -- the daemon's default; the hello result may announce another

--- The 4 header bytes for a body of `n` bytes.
function M.header(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
end

--- One frame for `body` (a string of UTF-8 JSON). Errors on an empty or oversized body.
function M.encode(body, max_size)
  max_size = max_size or M.MAX_FRAME_SIZE
  local n = #body
  if n < 1 then
    error("claif_cod.frame: empty frame body", 2)
  end
  if n > max_size then
    error(string.format("claif_cod.frame: frame body of %d bytes exceeds the limit of %d", n, max_size), 2)
  end
  return M.header(n) .. body
end

local Decoder = {}
Decoder.__index = Decoder

--- A streaming decoder: feed it whatever a socket read returned, get back the whole bodies.
--- Chunks are kept in a queue and only joined once a whole frame is there, so a large frame that
--- arrives in many reads costs one copy, and many small frames in one read cost no re-copying.
function M.decoder(max_size)
  return setmetatable({
    max_size = max_size or M.MAX_FRAME_SIZE,
    chunks = {}, -- queue of unread strings, from index `first` to `last`
    first = 1,
    last = 0,
    offset = 1, -- where the unread part of chunks[first] starts
    buffered = 0, -- unread bytes across all chunks
    need = nil, -- body length of the frame being read, once its header is in
    failed = nil, -- the error that stopped this decoder; the stream can't be trusted after it
  }, Decoder)
end

function Decoder:_take(n)
  local parts = {}
  while n > 0 do
    local chunk = self.chunks[self.first]
    local available = #chunk - self.offset + 1
    if available <= n then
      parts[#parts + 1] = self.offset == 1 and chunk or chunk:sub(self.offset)
      self.chunks[self.first] = nil
      self.first = self.first + 1
      self.offset = 1
      n = n - available
      self.buffered = self.buffered - available
    else
      parts[#parts + 1] = chunk:sub(self.offset, self.offset + n - 1)
      self.offset = self.offset + n
      self.buffered = self.buffered - n
      n = 0
    end
  end
  return #parts == 1 and parts[1] or table.concat(parts)
end

--- Feed bytes; returns a list of complete bodies (maybe empty) and, if the stream is broken (a
--- frame announced empty or larger than the limit), an error message as the second value. The
--- bodies decoded before the bad header are still returned.
function Decoder:feed(data)
  local bodies = {}
  if self.failed then
    return bodies, self.failed
  end
  if data and #data > 0 then
    self.last = self.last + 1
    self.chunks[self.last] = data
    self.buffered = self.buffered + #data
  end
  while true do
    if self.need == nil then
      if self.buffered < 4 then
        break
      end
      local b1, b2, b3, b4 = self:_take(4):byte(1, 4)
      local n = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      if n == 0 then
        self.failed = "received an empty frame"
        return bodies, self.failed
      end
      if n > self.max_size then
        self.failed = string.format("received a frame of %d bytes, over the limit of %d", n, self.max_size)
        return bodies, self.failed
      end
      self.need = n
    end
    if self.buffered < self.need then
      break
    end
    bodies[#bodies + 1] = self:_take(self.need)
    self.need = nil
  end
  return bodies, nil
end

--- Bytes received but not yet returned as a body (a partial header or body).
function Decoder:pending()
  return self.buffered + (self.need and 4 or 0)
end

return M
