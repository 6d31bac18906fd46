-- The pipelining shape (RFC 2920, RFC 3030): what goes out per write and
-- how often the client waits for the server, proven against the scripted
-- server with a counting wrapper around the C transport.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local function msg(n)
  return ("From: a@example.org\r\nTo: b@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n"):format(n, n)
end

-- Every spec runs twice: bodies through Conn:send_body (the C route, one
-- write for a body under 1 MiB) and through the Lua chunk route
-- (send_data), the one a transport without send_body gets.
local with_send_body

-- Wraps the client's transport: counts writes and reply waits (a read
-- that finds no complete reply already buffered has to wait).
local function instrument(client)
  local t = client._t
  local stats = { writes = 0, waits = 0, replies = 0 }
  local w = {}
  function w.send(_, data) stats.writes = stats.writes + 1; return t:send(data) end
  function w.send_data(_, ...) stats.writes = stats.writes + 1; return t:send_data(...) end
  if with_send_body then
    function w.send_body(_, ...) stats.writes = stats.writes + 1; stats.send_body = true; return t:send_body(...) end
  end
  function w.read_reply(_, parser)
    stats.replies = stats.replies + 1
    if parser:buffered() == 0 then stats.waits = stats.waits + 1 end
    return t:read_reply(parser)
  end
  function w.set_deadline(_, d) return t:set_deadline(d) end
  function w.close() return t:close() end
  client._t = w
  return stats
end

local function run(transcript, fn)
  local server = scripted.start(transcript)
  local client, stats
  local ok, err = pcall(function()
    client = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    client:helo()
    stats = instrument(client)
    return fn(client)
  end)
  if client then client:close() end
  local sok, serr, received = server:result()
  return ok and nil or err, sok, serr, received[1] or "", stats
end

for _, route in ipairs({ "C send_body", "Lua send_data" }) do
describe("client:sendmany() [" .. route .. "]", function()
  setup(function() with_send_body = route == "C send_body" end)

  it("piggybacks each body's terminator with the next envelope (DATA mode)", function()
    local results
    local err, sok, serr, received = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
BODY
C: MAIL FROM:<a@example.org>
C: RCPT TO:<gone@example.org>
C: DATA
S: 250 2.0.0 queued as AAAA1
S: 250 ok
S: 550 5.1.1 unknown
S: 554 5.5.1 no valid recipients
C: RSET
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
S: 250 ok
S: 250 ok
S: 250 ok
S: 354 go
BODY
S: 250 2.0.0 queued as CCCC3
]], function(c)
      local bad = msg(2):gsub("To: b@", "To: gone@")
      results = c:sendmany({ msg(1), bad, msg(3) }, { from = "a@example.org" })
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal(3, #results)
    assert.equal("AAAA1", results[1].reply.queue_id)
    assert.is_true(smtp.Error.is(results[2]))
    assert.equal("permanent", results[2].kind)
    assert.equal(550, results[2].code)
    assert.equal("CCCC3", results[3].reply.queue_id)
    assert.is_nil(received:find("body 2", 1, true))
    assert.truthy(received:find("body 1\r\n.\r\nMAIL FROM", 1, true))
  end)

  it("costs one write and one reply wait per message with CHUNKING", function()
    local lines = { "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250-mx", "S: 250-PIPELINING", "S: 250 CHUNKING" }
    local n = 20
    for i = 1, n do
      lines[#lines + 1] = "C: MAIL FROM:<a@example.org>"
      lines[#lines + 1] = "C: RCPT TO:<b@example.org>"
      lines[#lines + 1] = "BDAT"
      -- A real server answers a pipelined group in one write.
      lines[#lines + 1] = ("R: 250 ok\\r\\n250 ok\\r\\n250 2.0.0 queued as Q%04d\\r\\n"):format(i)
    end
    local msgs = {}
    for i = 1, n do msgs[i] = msg(i) end
    local results
    local err, sok, serr, _, stats = run(table.concat(lines, "\n") .. "\n", function(c)
      results = c:sendmany(msgs)
    end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    for i = 1, n do assert.equal(("Q%04d"):format(i), results[i].reply.queue_id) end
    assert.equal(n, stats.writes)
    assert.equal(with_send_body, stats.send_body == true)
    assert.is_true(stats.waits <= n, "waits: " .. stats.waits)
    assert.equal(3 * n, stats.replies)
  end)

  it("costs two reply waits per message for a single sendmail with PIPELINING", function()
    local err, sok, serr, _, stats = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
R: 250 ok\r\n250 ok\r\n354 go\r\n
BODY
S: 250 ok
]], function(c) c:sendmail(msg(1)) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal(2, stats.writes)
    assert.equal(2, stats.waits)
  end)

  it("sends a small message with its whole transaction in one write (CHUNKING)", function()
    local err, sok, serr, received, stats = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
BDAT
R: 250 ok\r\n250 ok\r\n250 ok\r\n
]], function(c) c:sendmail(msg(1)) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal(1, stats.writes)
    assert.equal(1, stats.waits)
    assert.truthy(received:find("RCPT TO:<b@example.org>\r\nBDAT " .. #msg(1) .. " LAST\r\n", 1, true))
  end)

  it("gives every unsettled message the connection's error", function()
    local results
    local err = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
BODY
CLOSE
]], function(c) results = c:sendmany({ msg(1), msg(2) }) end)
    assert.is_nil(err)
    assert.equal("io", results[1].kind)
    assert.equal("unknown", results[1].outcome)
    assert.equal("io", results[2].kind)
    assert.equal("not_sent", results[2].outcome)
  end)

  it("reports a bad message in its slot without sending it", function()
    local results
    local err, sok, serr = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
S: 250 ok
S: 250 ok
S: 354 go
BODY
S: 250 ok
]], function(c) results = c:sendmany({ "From: a@example.org\r\n\r\nno recipients\r\n", msg(2) }) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.equal("usage", results[1].kind)
    assert.equal(250, results[2].reply.code)
  end)

  it("sends a message with NUL bytes untouched as BDAT with BODY=BINARYMIME", function()
    local bin = "From: a@example.org\r\nTo: b@example.org\r\n\r\nbinary\0bytes\nbare lf\r.\r\n"
    local err, sok, serr, received = run(([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250-PIPELINING
S: 250-CHUNKING
S: 250 BINARYMIME
C: MAIL FROM:<a@example.org> BODY=BINARYMIME
C: RCPT TO:<b@example.org>
BDAT
R: 250 ok\r\n250 ok\r\n250 ok\r\n
]]), function(c) c:sendmail(bin) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.truthy(received:find("BDAT " .. #bin .. " LAST\r\n" .. bin, 1, true))
  end)

  it("refuses binary data when the server lacks BINARYMIME", function()
    local err, sok, _, received = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250-PIPELINING
S: 250 CHUNKING
]], function(c) c:sendmail("From: a@example.org\r\nTo: b@example.org\r\n\r\nx\0y\r\n") end)
    assert.is_true(sok)
    assert.equal("permanent", err.kind)
    assert.truthy(err.message:find("BINARYMIME", 1, true))
    assert.equal("EHLO c.example\r\n", received)
  end)

  it("uses BDAT for binary data with all_or_nothing too", function()
    local bin = "From: a@example.org\r\nTo: b@example.org\r\n\r\nx\0y\r\n"
    local err, sok, serr, received = run([[
S: 220 mx ESMTP
C: EHLO c.example
S: 250-mx
S: 250-PIPELINING
S: 250-CHUNKING
S: 250 BINARYMIME
C: MAIL FROM:<a@example.org> BODY=BINARYMIME
C: RCPT TO:<b@example.org>
R: 250 ok\r\n250 ok\r\n
BDAT
S: 250 2.0.0 queued as BIN1
]], function(c) assert.equal("BIN1", c:sendmail(bin, { all_or_nothing = true }).reply.queue_id) end)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.truthy(received:find("BDAT " .. #bin .. " LAST\r\n" .. bin, 1, true))
  end)
end)
end
