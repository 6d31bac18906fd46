-- smtp.core's file-system helpers for the outbox (csrc/lfsutil.c): flock
-- between real processes, exclusive creation, listing, usage errors.
local core = require "smtp.core"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local ROOT = P.run("pwd"):gsub("\n$", "")
local BUILD = os.getenv("SMTP_BUILD") or "build"

-- Starts a child Lua that locks `path`, writes "locked" to `flag`, then
-- sleeps (bounded: 30 s) until killed. Returns its PID once it holds it.
local function lock_holder(path, flag)
  local code = ([[
package.cpath = %q .. ";" .. package.cpath
local core = require "smtp.core"
local lock = assert(core.fs_lock(%q))
local f = assert(io.open(%q, "w")); f:write("locked"); f:close()
core.sleep(30)
lock:unlock()
]]):format(ROOT .. "/" .. BUILD .. "/?.so", path, flag)
  local pid = P.spawn(V.interpreter .. " -e " .. P.q(code))
  assert(P.wait_for(10, function() return P.read_file(flag) == "locked" or not P.alive(pid) end))
  assert(P.alive(pid), "lock holder exited early")
  return pid
end

describe("smtp.core file helpers", function()
  local dir
  before_each(function() dir = P.tempdir("fsutil") end)

  it("fs_lock: a second process gets 'busy'; SIGKILL of the holder frees the lock", function()
    local path = dir .. "/f"
    P.write_file(path, "x")
    local pid = lock_holder(path, dir .. "/flag")
    local ok, pcall_err = pcall(function()
      local l, why, msg = core.fs_lock(path)
      assert.is_nil(l)
      assert.equal("busy", why)
      assert.matches("locked", msg)
    end)
    P.kill(pid, "KILL")
    assert.truthy(P.wait_for(5, function() return not P.alive(pid) end))
    assert(ok, pcall_err)
    local l = assert(core.fs_lock(path))
    assert.is_true(l:held())
    -- Same process, another open file: flock still excludes it.
    local l2, why = core.fs_lock(path)
    assert.is_nil(l2)
    assert.equal("busy", why)
    assert.is_true(l:unlock())
    assert.is_false(l:held())
    assert.is_true(l:unlock()) -- twice is harmless
    assert.truthy(core.fs_lock(path)):unlock()
  end)

  it("fs_lock: a missing file is 'gone'; a file renamed over a locked one is a new, free file", function()
    local l, why = core.fs_lock(dir .. "/none")
    assert.is_nil(l)
    assert.equal("gone", why)
    -- A lock on a file that has since been renamed away names nothing.
    P.write_file(dir .. "/a", "1")
    local held = assert(core.fs_lock(dir .. "/a"))
    P.write_file(dir .. "/b", "2")
    assert.truthy(core.fs_rename(dir .. "/b", dir .. "/a"))
    held:unlock()
    -- The new file at the path is a different one and is free.
    assert.truthy(core.fs_lock(dir .. "/a")):unlock()
  end)

  it("fs_lock is released by the garbage collector", function()
    local path = dir .. "/g"
    P.write_file(path, "x")
    do local _ = assert(core.fs_lock(path)) end
    collectgarbage()
    collectgarbage()
    assert.truthy(core.fs_lock(path)):unlock()
  end)

  it("fs_write_file writes the bytes (mode 0600) and refuses an existing path", function()
    local path = dir .. "/w"
    local data = "a\0b\r\n" .. ("\255"):rep(70000)
    assert.is_true(core.fs_write_file(path, data))
    assert.equal(data, P.read_file(path))
    assert.equal("600", P.run("stat -c %a " .. P.q(path)):match("%d+"))
    local ok, kind, msg = core.fs_write_file(path, "other")
    assert.is_nil(ok)
    assert.equal("io", kind)
    assert.matches("exists", msg)
    assert.equal(data, P.read_file(path))
    ok, kind = core.fs_write_file(dir .. "/no/such/dir", "x")
    assert.is_nil(ok)
    assert.equal("io", kind)
  end)

  it("fs_list names every entry but . and ..; fs_mkdir accepts an existing directory", function()
    assert.same({}, core.fs_list(dir))
    assert.is_true(core.fs_mkdir(dir .. "/sub"))
    assert.is_true(core.fs_mkdir(dir .. "/sub"))
    P.write_file(dir .. "/x y", "")
    P.write_file(dir .. "/.hidden", "")
    local names = core.fs_list(dir)
    table.sort(names)
    assert.same({ ".hidden", "sub", "x y" }, names)
    local ok, kind = core.fs_mkdir(dir .. "/x y")
    assert.is_nil(ok)
    assert.equal("io", kind)
    ok, kind = core.fs_list(dir .. "/missing")
    assert.is_nil(ok)
    assert.equal("io", kind)
  end)

  it("fs_rename and fs_sync_dir report failures as nil, 'io', message", function()
    P.write_file(dir .. "/r", "1")
    assert.is_true(core.fs_rename(dir .. "/r", dir .. "/s"))
    assert.is_true(core.fs_sync_dir(dir))
    local ok, kind, msg = core.fs_rename(dir .. "/r", dir .. "/t")
    assert.is_nil(ok)
    assert.equal("io", kind)
    assert.matches("cannot rename", msg)
    ok, kind = core.fs_sync_dir(dir .. "/missing")
    assert.is_nil(ok)
    assert.equal("io", kind)
  end)

  it("refuses bad arguments with nil, 'usage', message", function()
    for _, s in ipairs({ 0 / 0, -1, 1e6, math.huge }) do
      local ok, kind, msg = core.sleep(s)
      assert.is_nil(ok)
      assert.equal("usage", kind)
      assert.matches("seconds", msg)
    end
    local t0 = core.now()
    assert.is_true(core.sleep(0.05))
    assert.is_true(core.sleep(0))
    assert.is_true(core.now() - t0 >= 0.045)
    for _, f in ipairs({ "fs_list", "fs_lock", "fs_sync_dir", "fs_mkdir" }) do
      local ok, kind = core[f]("a\0b")
      assert.is_nil(ok)
      assert.equal("usage", kind)
      ok, kind = core[f]("")
      assert.is_nil(ok)
      assert.equal("usage", kind)
    end
    local ok, kind = core.fs_write_file(dir .. "/a\0b", "x")
    assert.is_nil(ok)
    assert.equal("usage", kind)
    assert.has_error(function() core.fs_write_file(dir .. "/x", nil) end)
    assert.has_error(function() core.sleep("soon") end)
  end)

  it("getpid and wall_time", function()
    assert.equal(P.lua_pid(), core.getpid())
    assert.is_true(math.abs(core.wall_time() - os.time()) < 2)
  end)
end)
