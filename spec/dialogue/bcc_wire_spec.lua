-- Review M2 on the wire: raw messages whose Bcc / Resent-Bcc fields hide
-- behind bare CR line ends or "Bcc :" never put those fields into DATA or
-- BDAT, and their addresses get a RCPT TO. The scripted server asserts
-- every command; the message bytes it received are compared whole.
local smtp = require "smtp"
local scripted = require "helpers.scripted"

local EHLO_DATA = "S: 220 mx\nC: EHLO c.example\nS: 250-mx\nS: 250 HELP\n"
-- BDAT goes only with PIPELINING: commands and chunk in one write.
local EHLO_BDAT = "S: 220 mx\nC: EHLO c.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 CHUNKING\n"

-- Bcc after a bare CR, "Bcc :" folded with a bare CR, the header ending
-- in CR CR, and a "Bcc:" line in the body (which is not a header).
local HIDDEN_BCC = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\rBcc: hidden@example.net\r\n" ..
  "X-Obs: 1\nBcc : obs@example.net,\r\n\tobs2@example.net\rDate: x\r\rbody line\rBcc: in-body@example.net\n"
local HIDDEN_BCC_SENT = "From: a@example.org\r\nTo: b@example.org\r\nSubject: hello\r\nX-Obs: 1\r\nDate: x\r\n" ..
  "\r\nbody line\r\nBcc: in-body@example.net\r\n"
local HIDDEN_BCC_RCPTS = { "b@example.org", "hidden@example.net", "obs@example.net", "obs2@example.net" }

local RESENT = "Resent-From: r@example.org\r\nResent-To: c@example.org\r\nResent-Bcc: rb@example.net\r" ..
  "From: a@example.org\r\nTo: b@example.org\r\n\r\nbody\r\n"
local RESENT_SENT = "Resent-From: r@example.org\r\nResent-To: c@example.org\r\n" ..
  "From: a@example.org\r\nTo: b@example.org\r\n\r\nbody\r\n"
local RESENT_RCPTS = { "c@example.org", "rb@example.net" }

-- The message as a string, a file handle or a source of 3-byte chunks.
local function source_of(kind, msg)
  if kind == "string" then return msg end
  if kind == "file" then
    local f = assert(io.tmpfile())
    f:write(msg)
    f:seek("set")
    return f
  end
  local pos = 1
  return function()
    if pos > #msg then return nil end
    local c = msg:sub(pos, pos + 2)
    pos = pos + 3
    return c
  end
end

local function transcript(ehlo, rcpts, bdat)
  local t = { ehlo, "C: MAIL FROM:<a@example.org>" }
  if bdat then
    for _, r in ipairs(rcpts) do t[#t + 1] = "C: RCPT TO:<" .. r .. ">" end
    t[#t + 1] = "BDAT"
    t[#t + 1] = "R: " .. ("250 ok\\r\\n"):rep(#rcpts + 2)
  else
    t[#t + 1] = "S: 250 ok"
    for _, r in ipairs(rcpts) do
      t[#t + 1] = "C: RCPT TO:<" .. r .. ">"
      t[#t + 1] = "S: 250 ok"
    end
    t[#t + 1] = "C: DATA\nS: 354 go\nBODY\nS: 250 ok"
  end
  t[#t + 1] = "C: QUIT\nS: 221 bye\n"
  return table.concat(t, "\n")
end

local function send(ehlo, kind, msg, rcpts, bdat)
  local server = scripted.start(transcript(ehlo, rcpts, bdat))
  local ok, err = pcall(function()
    local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "c.example" }
    local r = c:sendmail(source_of(kind, msg))
    c:quit()
    return r
  end)
  local sok, serr, received = server:result()
  assert.is_true(ok, tostring(err))
  assert.is_true(sok, serr)
  return received[1] or ""
end

-- The message text the client sent after DATA or in its BDAT LAST chunk.
local function message_of(received, bdat)
  if bdat then
    local n, at = received:match("\r\nBDAT (%d+) LAST\r\n()")
    return received:sub(at, at + tonumber(n) - 1)
  end
  return (assert(received:match("\r\nDATA\r\n(.-)%.\r\nQUIT\r\n$"), "no DATA body"))
end

local function no_hidden_line(text)
  local head = text:sub(1, (assert(text:find("\r\n\r\n", 1, true))))
  for line in head:gmatch("([^\r\n]*)\r\n") do
    local l = line:lower()
    assert.is_nil(l:find("^bcc[ \t]*:") or l:find("^resent%-bcc[ \t]*:"), "hidden field on the wire: " .. line)
    assert.is_nil(l:find("^[ \t]+[%w.]+@example%.net"), "continuation of a hidden field on the wire: " .. line)
  end
end

describe("Bcc and Resent-Bcc on the wire (review M2)", function()
  for _, kind in ipairs({ "string", "file", "function" }) do
    it("DATA: Bcc behind bare CRs and 'Bcc :' is not sent and gets RCPT TO (" .. kind .. ")", function()
      local text = message_of(send(EHLO_DATA, kind, HIDDEN_BCC, HIDDEN_BCC_RCPTS))
      no_hidden_line(text)
      assert.equal(HIDDEN_BCC_SENT, text)
    end)

    it("DATA: Resent-Bcc is not sent; Resent-To and Resent-Bcc get RCPT TO (" .. kind .. ")", function()
      local text = message_of(send(EHLO_DATA, kind, RESENT, RESENT_RCPTS))
      no_hidden_line(text)
      assert.equal(RESENT_SENT, text)
    end)
  end

  for _, kind in ipairs({ "string", "file" }) do
    it("BDAT: Bcc behind bare CRs and 'Bcc :' is not sent and gets RCPT TO (" .. kind .. ")", function()
      local text = message_of(send(EHLO_BDAT, kind, HIDDEN_BCC, HIDDEN_BCC_RCPTS, true), true)
      no_hidden_line(text)
      assert.equal(HIDDEN_BCC_SENT, text)
    end)
  end
end)
