-- The C body route (Conn:send_body, csrc/bodyout.c) against the scripted
-- server, which records every byte: raw messages from a file handle, with
-- DATA and with BDAT, byte for byte against an independent statement of
-- the encoding rules; smtp.message attachments by path; failures.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local HEAD = "From: a@example.org\r\nTo: b@example.org\r\nSubject: file\r\n\r\n"

local reference = require("helpers.wire").reference

local function temp_file(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

local EHLO_DATA = "S: 220 mx\nC: EHLO c.example\nS: 250-mx\nS: 250 PIPELINING\n"
local EHLO_BDAT = "S: 220 mx\nC: EHLO c.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING\n"

-- Sends 'content' from a file handle; returns the error, the server's
-- verdict and the bytes it received, and whether send_body was used.
local function send_file(transcript, content, opts)
  local server = scripted.start(transcript)
  local path = temp_file(content)
  local used = false
  local ok, err = pcall(function()
    local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    local t = c._t
    -- Spy on the route without changing it.
    c._t = setmetatable({ send_body = function(_, ...) used = true; return t:send_body(...) end },
      { __index = function(_, k)
          local v = t[k]
          if type(v) == "function" then return function(_, ...) return v(t, ...) end end
          return v
        end })
    local f = assert(io.open(path, "rb"))
    local o = { from = "a@example.org", to = "b@example.org" }
    for k, v in pairs(opts or {}) do o[k] = v end
    local r = c:sendmail(f, o)
    f:close()
    c:close()
    return r
  end)
  os.remove(path)
  local sok, serr, received = server:result()
  return (not ok) and err or nil, sok, serr, received[1] or "", used
end

local function data_transcript()
  return EHLO_DATA .. [[
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
R: 250 ok\r\n250 ok\r\n354 go\r\n
BODY
S: 250 2.0.0 queued as F1
]]
end

local function body_of_data(received)
  return received:match("\r\nDATA\r\n(.*)$")
end

describe("sendmail(file) through Conn:send_body", function()
  -- Bodies that cross the C reader's 512 KiB blocks and its 1 MiB writes
  -- with the awkward bytes right at the boundaries.
  local function boundary_body(block)
    local filler = ("f"):rep(78) .. "\r\n"
    local lead = HEAD .. filler:rep(math.floor((block - #HEAD) / #filler))
    local pad = block - #lead
    return lead .. ("p"):rep(pad) .. "\r\n.dot at the boundary\r\n" .. ("q"):rep(100) .. "\r"
      .. "\nsplit CRLF\rbare CR\nbare LF\r\n.\r\n..\r\nlast line without newline"
  end
  local cases = {
    { "CRLF lines, dots, bare CR and LF across a 512 KiB block", boundary_body(524288 - 1) },
    { "a CR LF pair split by the block boundary", boundary_body(524288 - 102 - 24) },
    { "the same across the 1 MiB write", boundary_body(1048576 - 3) },
    { "a header only, no body", "From: a@example.org\r\nSubject: x" },
    { "an empty file", "" },
  }
  for _, case in ipairs(cases) do
    it("DATA: " .. case[1], function()
      local err, sok, serr, received, used = send_file(data_transcript(), case[2], { chunking = false })
      assert.is_nil(err)
      assert.is_true(sok, serr)
      assert.is_true(used)
      local body = body_of_data(received)
      assert.equal(reference(case[2], true), body)
      assert.is_nil(body:gsub("\r\n", ""):find("[\r\n]"), "bare CR or LF on the wire")
    end)
  end

  it("BDAT: chunk sizes are the bytes that follow, the last one LAST", function()
    local content = boundary_body(1048576 + 4096)
    local err, sok, serr, received, used = send_file(EHLO_BDAT .. [[
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
BDAT
BDAT
R: 250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 queued as B1\r\n
]], content)
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_true(used)
    -- Walk the BDAT commands by their sizes.
    local at, payload, commands, last = received:find("BDAT", 1, true), {}, 0, false
    while at do
      local n, is_last, nl = received:match("^BDAT (%d+)( ?L?A?S?T?)\r\n()", at)
      assert.truthy(n, "BDAT command expected at " .. at)
      commands = commands + 1
      payload[#payload + 1] = received:sub(nl, nl + tonumber(n) - 1)
      at = nl + tonumber(n)
      last = is_last == " LAST"
      if at > #received then break end
    end
    assert.equal(2, commands)
    assert.is_true(last)
    assert.equal(reference(content, false), table.concat(payload))
  end)

  it("takes the Lua route when a progress callback wants every chunk", function()
    local calls = 0
    local content = HEAD .. "body\r\n"
    local err, sok, serr, received, used = send_file(data_transcript(), content,
      { chunking = false, progress = function() calls = calls + 1 end })
    assert.is_nil(err)
    assert.is_true(sok, serr)
    assert.is_false(used)
    assert.is_true(calls > 0)
    assert.equal(reference(content, true), body_of_data(received))
  end)

  it("drops the connection without a terminator when the file cannot be read", function()
    -- A directory opens for reading on Linux and fails on read (EISDIR).
    local server = scripted.start(EHLO_DATA .. [[
C: MAIL FROM:<a@example.org>
C: RCPT TO:<b@example.org>
C: DATA
R: 250 ok\r\n250 ok\r\n354 go\r\n
SLEEP 0.5
]])
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    local f = assert(io.open(dir, "rb"))
    local env = require("smtp.envelope").prepare(HEAD .. "x\r\n", { from = "a@example.org", to = "b@example.org" })
    env.parts[#env.parts + 1] = { file = f }
    c:_ensure_helo()
    local ok, err = pcall(c._send_envelope, c, env, { chunking = false })
    f:close()
    os.remove(dir)
    local _, _, received = server:result()
    assert.is_false(ok)
    assert.equal("io", err.kind)
    assert.matches("message source failed", err.message)
    assert.is_true(c._closed)
    assert.is_nil((received[1] or ""):find("\r\n.\r\n", 1, true), "a truncated message was terminated")
  end)

  it("refuses a part it cannot send before writing anything", function()
    local server = scripted.start(EHLO_DATA .. "SLEEP 0.3\n")
    local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    c:helo()
    local f = assert(io.open(os.tmpname(), "rb"))
    f:close()
    assert.has_error(function() c._t:send_body({ "x", { file = f } }) end)
    assert.has_error(function() c._t:send_body({ "x", 42 }) end)
    assert.has_error(function() c._t:send_body({ { data = "a", path = "/x" } }) end)
    c:close()
    local _, _, received = server:result()
    assert.is_nil((received[1] or ""):find("x", #"EHLO c.example\r\n" + 1, true))
  end)
end)

describe("smtp.message attachments by path through Conn:send_body", function()
  it("sends the same bytes as the message's own source", function()
    local bin = {}
    for i = 0, 300000 do bin[#bin + 1] = string.char((i * 7 + 3) % 256) end
    local path = temp_file(table.concat(bin))
    local m = smtp.message {
      from = "a@example.org", to = "b@example.org", subject = "att",
      text = "See the attachment.\n.leading dot\n",
      attachments = { { path = path, content_type = "application/octet-stream" },
        { data = "small\0data", filename = "d.bin" } },
    }
    local expected = reference(tostring(m), true)
    local server = scripted.start(data_transcript())
    local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    c:sendmail(m, { chunking = false })
    c:close()
    os.remove(path)
    local sok, serr, received = server:result()
    assert.is_true(sok, serr)
    assert.equal(expected, body_of_data(received[1]))
  end)
end)
