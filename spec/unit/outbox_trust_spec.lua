-- The outbox against its own directory (issue 23, review 2026-12b N1-N4):
-- odd entries in queue/ cannot hang, exhaust or stop run(); a file someone
-- else puts in sent/ cannot make run() drop a queued message; a spool
-- directory another user controls is refused; two writers drawing one id
-- never replace each other's message. Each run() that could hang on the
-- old code runs in a child process under `timeout`.
local smtp = require "smtp"
local core = require "smtp.core"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local ROOT = P.run("pwd"):gsub("\n$", "")
local BUILD = os.getenv("SMTP_BUILD") or "build"
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: good\r\n\r\nbody\r\n"
local is_root = P.run("id -u"):match("^0") ~= nil

-- A child Lua that opens the outbox, puts nothing, runs it with a sender
-- that records what it sends, and prints "sent <n> bad <n> took <s>".
local CHILD = [[
local smtp = require "smtp"
local core = require "smtp.core"
local sent = {}
local sender = { send = function(_, msg) sent[#sent + 1] = msg; return { accepted = { "b@example.org" } } end }
local box = smtp.outbox(arg[1])
local t0 = core.now()
local ok, stats = pcall(box.run, box, sender, { max_seconds = 3 })
if not ok then print("error " .. tostring(stats)) os.exit(1) end
print(("sent %d bad %d took %.2f"):format(#sent, stats.bad or 0, core.now() - t0))
for _, m in ipairs(sent) do io.write("msg ", (m:match("Subject: (%w+)") or "?"), "\n") end
]]

local function run_child(dir)
  local script = P.tempdir("trust") .. "/child.lua"
  P.write_file(script, CHILD)
  return P.run(("cd %s && LUA_PATH=%s LUA_CPATH=%s timeout 15 %s %s %s 2>&1; echo exit=$?"):format(
    P.q(ROOT), P.q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"), P.q(BUILD .. "/?.so;;"),
    V.interpreter, P.q(script), P.q(dir)))
end

local function fresh_box(opts)
  local dir = P.tempdir("outbox-trust") .. "/box"
  return smtp.outbox(dir, opts), dir
end

describe("outbox:run and odd entries in queue/ (N1)", function()
  local odd = {
    fifo = function(path) assert(P.try("mkfifo " .. P.q(path))) end,
    ["symlink to /dev/zero"] = function(path) assert(P.try("ln -s /dev/zero " .. P.q(path))) end,
    directory = function(path) assert(P.try("mkdir " .. P.q(path))) end,
    ["another user's file"] = function(path)
      P.write_file(path, "lua-smtp-outbox 1\n")
      assert(P.try("chown nobody " .. P.q(path) .. " && chmod 600 " .. P.q(path)))
    end,
  }
  for _, name in ipairs({ "fifo", "symlink to /dev/zero", "directory", "another user's file" }) do
    it("a " .. name .. " next to a good message: the good one is sent within max_seconds", function()
      if name == "another user's file" and not is_root then
        pending("needs root to give a file to another user")
        return
      end
      local box, dir = fresh_box()
      box:put(RAW, { from = "a@example.org", to = { "b@example.org" } })
      -- Sorted before the good one, so run() meets it first.
      odd[name](dir .. "/queue/0000000000000-evil")
      local out = run_child(dir)
      assert.truthy(out:find("exit=0", 1, true), out)
      local n, bad, took = out:match("sent (%d+) bad (%d+) took ([%d.]+)")
      assert.equal("1", n, out)
      assert.equal("1", bad, out)
      assert.is_true(tonumber(took) < 3, out)
      assert.truthy(out:find("msg good", 1, true), out)
      -- Moved aside unopened, so the next run does not meet it again.
      assert.truthy(core.fs_lstat(dir .. "/bad/0000000000000-evil"), out)
      assert.falsy(core.fs_lstat(dir .. "/queue/0000000000000-evil"))
      assert.same({}, box:list("queue"))
    end)
  end

  it("entry() on a FIFO in hold/ returns without blocking", function()
    local box, dir = fresh_box()
    assert(P.try("mkfifo " .. P.q(dir .. "/hold/1-fifo")))
    local out = P.run(("cd %s && LUA_PATH=%s LUA_CPATH=%s timeout 10 %s -e %s 2>&1; echo exit=$?"):format(
      P.q(ROOT), P.q(ROOT .. "/lua/?.lua;;"), P.q(BUILD .. "/?.so;;"), V.interpreter,
      P.q(("print(require('smtp').outbox(%q):entry('1-fifo'))"):format(dir))))
    assert.truthy(out:find("exit=0", 1, true), out)
    assert.is_nil(box:entry("1-fifo"))
  end)
end)

describe("a file someone else put in sent/ (N2)", function()
  local sender_calls
  local function sender()
    sender_calls = 0
    return { send = function() sender_calls = sender_calls + 1; return { accepted = { "b@example.org" } } end }
  end

  local function queued()
    local box, dir = fresh_box()
    local id = box:put(RAW, { from = "a@example.org", to = { "b@example.org" } })
    return box, dir, id
  end

  it("an empty file in sent/<id>: the queue copy is held, not deleted", function()
    local box, dir, id = queued()
    P.write_file(dir .. "/sent/" .. id, "")
    box:run(sender())
    assert.equal(0, sender_calls)
    assert.same({}, box:list("queue"))
    assert.same({ id }, box:list("hold"))
    assert.truthy(P.read_file(dir .. "/hold/" .. id):find("Subject: good", 1, true))
  end)

  it("another user's copy of the very file in sent/<id> is not trusted either", function()
    if not is_root then
      pending("needs root to give a file to another user")
      return
    end
    local box, dir, id = queued()
    P.write_file(dir .. "/sent/" .. id, P.read_file(dir .. "/queue/" .. id))
    assert(P.try("chown nobody " .. P.q(dir .. "/sent/" .. id)))
    box:run(sender())
    assert.equal(0, sender_calls)
    assert.same({ id }, box:list("hold"))
  end)

  it("a file with the same id but another token in failed/<id> holds the message", function()
    local box, dir, id = queued()
    local data = P.read_file(dir .. "/queue/" .. id)
    P.write_file(dir .. "/failed/" .. id, (data:gsub("\ntoken %x+\n", "\ntoken 0123456789abcdef\n")))
    box:run(sender())
    assert.equal(0, sender_calls)
    assert.same({ id }, box:list("hold"))
  end)

  it("its own final copy (a worker died before removing the queue copy) still removes the stale copy", function()
    local box, dir, id = queued()
    P.write_file(dir .. "/sent/" .. id, P.read_file(dir .. "/queue/" .. id))
    box:run(sender())
    assert.equal(0, sender_calls)
    assert.same({}, box:list("queue"))
    assert.same({}, box:list("hold"))
    assert.same({ id }, box:list("sent"))
  end)
end)

describe("smtp.outbox(dir) and who owns the directory (N3)", function()
  local function refused(dir, opts)
    local ok, err = pcall(smtp.outbox, dir, opts)
    assert.is_false(ok, "accepted " .. dir)
    assert.equal("usage", err.kind, tostring(err))
    return err.message
  end

  it("creates a new spool 0700", function()
    local _, dir = fresh_box()
    assert.equal(tonumber("700", 8), core.fs_lstat(dir).mode)
    assert.equal(tonumber("700", 8), core.fs_lstat(dir .. "/queue").mode)
  end)

  it("refuses a symlink to a directory", function()
    local base = P.tempdir("trust")
    assert(P.try("mkdir -m 700 " .. P.q(base .. "/real") .. " && ln -s real " .. P.q(base .. "/link")))
    assert.matches("symbolic link", refused(base .. "/link"), 1, true)
  end)

  it("refuses a directory others may write, unless shared = true", function()
    local base = P.tempdir("trust")
    assert(P.try("mkdir -m 777 " .. P.q(base .. "/open")))
    assert(P.try("chmod 777 " .. P.q(base .. "/open")))
    assert.matches("writable by group or others", refused(base .. "/open"), 1, true)
    assert.truthy(smtp.outbox(base .. "/open", { shared = true }))
  end)

  it("refuses a directory another user owns, unless shared = true", function()
    if not is_root then
      pending("needs root to give a directory to another user")
      return
    end
    local base = P.tempdir("trust")
    assert(P.try("mkdir -m 700 " .. P.q(base .. "/theirs") .. " && chown nobody " .. P.q(base .. "/theirs")))
    assert.matches("belongs to another user", refused(base .. "/theirs"), 1, true)
    assert.truthy(smtp.outbox(base .. "/theirs", { shared = true }))
  end)

  it("refuses a spool whose parent others may write without the sticky bit; /tmp-like parents are fine", function()
    local base = P.tempdir("trust")
    assert(P.try("mkdir " .. P.q(base .. "/open") .. " && chmod 777 " .. P.q(base .. "/open")))
    assert.matches("parent directory", refused(base .. "/open/box"), 1, true)
    assert(P.try("mkdir " .. P.q(base .. "/sticky") .. " && chmod 1777 " .. P.q(base .. "/sticky")))
    assert.truthy(smtp.outbox(base .. "/sticky/box"))
  end)

  it("refuses a queue/ subdirectory that is a symlink", function()
    local base = P.tempdir("trust")
    assert(P.try(("mkdir -m 700 %s %s && ln -s %s %s"):format(P.q(base .. "/box"), P.q(base .. "/elsewhere"),
      P.q(base .. "/elsewhere"), P.q(base .. "/box/queue"))))
    assert.matches("symbolic link", refused(base .. "/box"), 1, true)
  end)
end)

describe("outbox:put and ids drawn twice (N4)", function()
  it("a second put that draws a taken id gets another and both messages stay queued", function()
    local box = fresh_box()
    local n = 0
    box._new_id = function()
      n = n + 1
      return n <= 2 and "1796473000123-14950-1-573f" or ("1796473000124-14950-" .. n .. "-aaaa")
    end
    local first = box:put(RAW, { from = "a@example.org", to = { "first@example.org" } })
    local second = box:put(RAW, { from = "a@example.org", to = { "second@example.org" } })
    assert.are_not.equal(first, second)
    local q = box:list("queue")
    assert.equal(2, #q)
    assert.same({ "first@example.org" }, box:entry(first).envelope.to)
    assert.same({ "second@example.org" }, box:entry(second).envelope.to)
  end)

  it("the random part of an id comes from the entropy source, not math.random", function()
    -- Two children with math.random seeded alike (5.1/LuaJIT do not seed it).
    local ids = {}
    for i = 1, 2 do
      local dir = P.tempdir("trust") .. "/box" .. i
      ids[i] = P.run(("cd %s && LUA_PATH=%s LUA_CPATH=%s %s -e %s 2>&1"):format(P.q(ROOT),
        P.q(ROOT .. "/lua/?.lua;;"), P.q(BUILD .. "/?.so;;"), V.interpreter,
        P.q(("math.randomseed(7); io.write(require('smtp').outbox(%q):put(%q, {from='a@example.org', to={'b@example.org'}}))")
          :format(dir, RAW)))):match("%-(%x+)$")
    end
    assert.truthy(ids[1] and #ids[1] == 8, tostring(ids[1]))
    assert.are_not.equal(ids[1], ids[2])
  end)
end)
