-- smtp.outbox run(): files older than an hour in tmp/ are removed,
-- whoever wrote them (issue 25 item 8: a process killed inside put()
-- leaves its half-written file there); young ones, symlinks and
-- directories stay.
local smtp = require "smtp"
local core = require "smtp.core"
local P = require "helpers.proc"

local RAW = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\nbody\r\n"
local never = { send = function() error("the sender must not be called") end }

local function sorted(list)
  table.sort(list)
  return list
end

describe("smtp.outbox tmp/ leftovers", function()
  it("run() removes regular files older than an hour, not young ones", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    local tmp = ob.dir .. "/tmp/"
    -- A put() killed half way (its name is an id), a stranger's file, and
    -- the same two written just now (a put() that may still be running).
    for _, name in ipairs({ "1700000000000-4242-1-abcd", "junk", "2700000000000-1-1-ffff", "fresh" }) do
      P.write_file(tmp .. name, "half a message")
    end
    P.run("touch -d '-61 minutes' " .. P.q(tmp .. "1700000000000-4242-1-abcd") .. " " .. P.q(tmp .. "junk"))
    P.run("touch -d '-59 minutes' " .. P.q(tmp .. "2700000000000-1-1-ffff"))
    -- A symlink to an old file and an old directory are never touched.
    P.write_file(ob.dir .. "/target", "keep me")
    P.run("touch -d '-2 hours' " .. P.q(ob.dir .. "/target"))
    P.run("ln -s ../target " .. P.q(tmp .. "link") .. " && touch -h -d '-2 hours' " .. P.q(tmp .. "link"))
    P.run("mkdir " .. P.q(tmp .. "olddir") .. " && touch -d '-2 hours' " .. P.q(tmp .. "olddir"))
    assert.same({ delivered = 0, failed = 0, deferred = 0, unknown = 0 }, ob:run(never))
    assert.same({ "2700000000000-1-1-ffff", "fresh", "link", "olddir" }, sorted(core.fs_list(tmp)))
    assert.equal("keep me", P.read_file(ob.dir .. "/target"))
  end)

  it("an old leftover does not disturb the queue", function()
    local ob = smtp.outbox(P.tempdir("outbox") .. "/box")
    local id = ob:put(RAW, {})
    P.write_file(ob.dir .. "/tmp/" .. id .. ".1.1", "old rewrite")
    P.run("touch -d '-3 hours' " .. P.q(ob.dir .. "/tmp/" .. id .. ".1.1"))
    local sent = {}
    local stats = ob:run({ send = function(_, _, opts)
      sent[#sent + 1] = opts.to
      return { accepted = opts.to, rejected = {} }
    end })
    assert.same({ delivered = 1, failed = 0, deferred = 0, unknown = 0 }, stats)
    assert.same({ { "b@example.org" } }, sent)
    assert.same({}, core.fs_list(ob.dir .. "/tmp"))
  end)
end)
