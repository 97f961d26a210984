-- Whether the daemon's socket can be trusted, checked like the Python client does
-- (claif_cod/transport/socket_path.py: check_socket before connecting, check_peer right after).
--
-- The socket grants full use of the user's Codex, and the plugin sends it the user's code: it must
-- be in a directory that is ours, not a symlink and closed to group and others (another user could
-- otherwise plant a listener there), and be a socket we own.

local uv = vim.loop
local bit = require("bit")

local M = {}

local GROUP_AND_OTHERS = 63 -- 0o077
local PERMISSIONS = 4095 -- 0o7777

local function dirname(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir == nil then
    return "."
  end
  return dir == "" and "/" or dir
end

-- lstat, or nil when there is nothing there; a failure other than ENOENT is an error.
local function lstat(path)
  local st, err, name = uv.fs_lstat(path)
  if st or name == "ENOENT" then
    return st
  end
  error(string.format("cannot check %s: %s", path, err), 0)
end

local function check_directory(dir, st)
  local me = uv.getuid()
  if st.type == "link" then
    return string.format("%s is a symlink; remove it (rm %s) and restart the daemon", dir, dir)
  elseif st.type ~= "directory" then
    return string.format("%s is not a directory; remove it and restart the daemon", dir)
  elseif st.uid ~= me then
    return string.format("%s is owned by uid %d, not by you (uid %d); "
      .. "remove it or set $CLAIF_COD_SOCKET to a path in a directory you own", dir, st.uid, me)
  elseif bit.band(st.mode, GROUP_AND_OTHERS) ~= 0 then
    return string.format("%s has mode %04o; group and others must have no access: chmod 700 %s",
      dir, bit.band(st.mode, PERMISSIONS), dir)
  end
end

local function check_path(path)
  local dir = dirname(path)
  local dir_st = lstat(dir)
  if not dir_st then
    return nil -- nothing to talk to: connecting says so
  end
  local problem = check_directory(dir, dir_st)
  if problem then
    return problem
  end
  local st = lstat(path)
  if not st then
    return nil
  elseif st.type ~= "socket" then
    return string.format("%s is not a socket; remove it (rm %s) and restart the daemon", path, path)
  elseif st.uid ~= uv.getuid() then
    return string.format("%s is owned by uid %d, not by you (uid %d); remove it (rm %s) and restart the daemon",
      path, st.uid, uv.getuid(), path)
  end
end

--- Why the socket at `path` must not be used (the Python client's words), or nil if it may.
function M.check_socket(path)
  local ok, problem = pcall(check_path, path)
  if not ok then
    problem = tostring(problem) -- lstat failed otherwise than ENOENT: we cannot tell, so refuse
  end
  if problem then
    return string.format("refusing to connect to claif-codd at %s: %s", path, problem)
  end
end

-- SO_PEERCRED through LuaJIT's FFI (libuv has no call for it): Linux only, on the architectures
-- whose constant is known. Elsewhere peer_uid() is nil and the check is skipped, as the Python
-- client does where the platform can't tell.
local SO_PEERCRED = { x64 = 17, x86 = 17, arm = 17, arm64 = 17 }
local ffi_ok, ffi = pcall(require, "ffi")
local peercred = ffi_ok and ffi.os == "Linux" and SO_PEERCRED[ffi.arch]
if peercred and not pcall(ffi.typeof, "struct claif_cod_ucred") then -- not declared by an earlier load
  peercred = pcall(ffi.cdef, [[
    struct claif_cod_ucred { int32_t pid; uint32_t uid; uint32_t gid; };
    int getsockopt(int sockfd, int level, int optname, void *optval, uint32_t *optlen);
  ]]) and peercred
end

--- The uid of the process listening at the other end of connected pipe `pipe`, or nil if unknown.
function M.peer_uid(pipe)
  if not peercred then
    return nil
  end
  local fd = pipe:fileno()
  if type(fd) ~= "number" then
    return nil
  end
  local cred = ffi.new("struct claif_cod_ucred[1]")
  local size = ffi.new("uint32_t[1]", ffi.sizeof("struct claif_cod_ucred"))
  if ffi.C.getsockopt(fd, 1 --[[SOL_SOCKET]], peercred, cred, size) ~= 0 then
    return nil
  end
  return tonumber(cred[0].uid)
end

--- After connecting, before sending anything: why the listener is not ours, or nil.
function M.check_peer(pipe, path)
  local uid = M.peer_uid(pipe)
  local me = uv.getuid()
  if uid ~= nil and uid ~= me then
    return string.format("refusing to connect to claif-codd at %s: the process listening on %s runs as uid %d, "
      .. "not as you (uid %d), so it is not your claif-codd; remove %s or set $CLAIF_COD_SOCKET to a path in a "
      .. "directory you own", path, path, uid, me, path)
  end
end

return M
