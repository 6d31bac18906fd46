-- smtp.core.memory_conn (issue 27): a connection whose bytes live in
-- memory buffers, fed and drained by a host's socket. The same reply
-- parser and DATA encoder as on a socket; where a socket would wait it
-- says "want", and a full output buffer holds the writer back.
local core = require "smtp.core"

describe("smtp.core.memory_conn", function()
  it("reads replies from fed bytes and wants more while a reply is incomplete", function()
    local c = core.memory_conn("mx.example:25")
    local p = core.reply_parser()
    local r, kind, ev = c:read_reply(p)
    assert.same({ nil, "want", "r" }, { r, kind, ev })
    assert.is_true(c:feed("220-mx.example ESMTP\r\n220 re"))
    r, kind, ev = c:read_reply(p)
    assert.same({ nil, "want", "r" }, { r, kind, ev })
    assert.is_true(c:feed("ady\r\n"))
    r = assert(c:read_reply(p))
    assert.equal(220, r.code)
    assert.is_false(c:is_closed())
  end)

  it("gives what was sent through take_output, once", function()
    local c = core.memory_conn()
    assert.is_nil(c:take_output())
    assert.is_true(c:send("EHLO a\r\n"))
    assert.is_true(c:send({ "MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n" }))
    assert.equal("EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", c:take_output())
    assert.is_nil(c:take_output())
  end)

  it("holds a large body back once 256 KiB wait, and goes on after a drain", function()
    local c = core.memory_conn()
    local stuffer = core.dotstuffer(true)
    local chunk = ("a"):rep(1000) .. "\r\n"
    local body = chunk:rep(1000) -- about 1 MB
    local n, ev = c:send_data(stuffer, body, true)
    assert.equal(#body + 3, n) -- the body ends in CRLF: ".\r\n" follows
    assert.equal("w", ev)
    local out = {}
    for _ = 1, 100 do
      out[#out + 1] = c:take_output()
      local ok, kind, want = c:flush()
      if ok then break end
      assert.same({ "want", "w" }, { kind, want })
    end
    out[#out + 1] = c:take_output()
    local wire = table.concat(out)
    assert.equal(body .. ".\r\n", wire)
  end)

  it("ends with kind io at the end of the stream, and refuses feeding a closed one", function()
    local c = core.memory_conn()
    assert.is_true(c:feed(nil))
    local r, kind, msg = c:read_reply(core.reply_parser())
    assert.is_nil(r)
    assert.equal("io", kind)
    assert.truthy(msg:find("closed", 1, true), msg)
    assert.is_true(c:is_closed())
    assert.has_error(function() c:feed("x") end)
  end)

  it("has no fd and no local address, and names itself", function()
    local c = core.memory_conn("mx.example:587")
    assert.equal(-1, c:fileno())
    assert.is_nil(c:local_literal())
    assert.truthy(tostring(c):find("memory, mx.example:587", 1, true))
    c:close()
    assert.truthy(tostring(c):find("closed", 1, true))
  end)
end)
