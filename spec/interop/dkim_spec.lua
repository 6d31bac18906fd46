-- DKIM-signed messages sent through real servers and verified by dkimpy
-- as received: aiosmtpd (every way of giving `dkim`: the message spec,
-- sendmail / sendmany / smtp.send options, raw strings, files and chunk
-- functions) and the Postfix + Dovecot stack, whose delivery in the
-- Maildir, with the headers Postfix adds, must still verify. The same
-- Postfix delivery checks issue 5's end-to-end case: a multipart message
-- with attachments comes back byte for byte as composed.
local smtp = require "smtp"
local servers = require "helpers.servers"
local keys = require "helpers.dkim_keys"
local P = require "helpers.proc"

local SEL, DOM = "mail", "example.org"

local function notification(extra)
  local spec = {
    from = { name = "Zoë Ünïcode", address = "notify@" .. DOM }, to = "Bob <bob@example.net>",
    subject = "Ihre Rechnung — März", text = "Hallo Bob,\n\nanbei die Rechnung.  \n.\nFrom Zoë\n",
    html = '<p>Hallo Bob,</p><p><img src="cid:logo@example.org"> anbei die Rechnung.</p>\n',
    attachments = {
      { data = "\137PNG\r\n\26\n" .. ("\0\255"):rep(700), filename = "logo.png", inline = true,
        content_id = "logo@example.org" },
      { data = "%PDF-1.4\n" .. ("\0\1\2\3binary\r\n\255"):rep(5000) .. "%%EOF\n", filename = "Rechnung März.pdf" },
    },
  }
  for k, v in pairs(extra or {}) do spec[k] = v end
  return spec
end

describe("DKIM through aiosmtpd #interop", function()
  local server, k
  setup(function()
    k = keys.make()
    server = servers.aiosmtpd { pipelining = true }
  end)
  teardown(function() if server then server:stop() end end)

  local function dkim_opts(extra)
    local o = { domain = DOM, selector = SEL, key_file = k.rsa2048.file }
    for key, v in pairs(extra or {}) do o[key] = v end
    return o
  end

  local function connect()
    return smtp.connect { host = server.host, port = server.port, timeout = 10 }
  end

  it("every way of asking for a signature gives messages that verify as received", function()
    local before = #server:messages()
    local raw = "From: raw@" .. DOM .. "\r\nTo: bob@example.net\r\nSubject: raw\r\nBcc: hidden@example.net\r\n\r\n"
      .. "raw body\n.with a leading dot\nand bare LF\n"
    local dir = P.tempdir("dkim-interop")
    P.write_file(dir .. "/raw.eml", raw)
    local client = connect()
    -- 1: the message's own dkim
    client:sendmail(smtp.message(notification { dkim = dkim_opts() }))
    -- 2: sendmail options, simple/simple, over a message object without dkim
    client:sendmail(smtp.message(notification()), { dkim = dkim_opts { canonicalization = "simple/simple" } })
    -- 3: a raw string (Bcc removed after signing)
    client:sendmail(raw, { dkim = dkim_opts() })
    -- 4: a raw file handle
    local f = assert(io.open(dir .. "/raw.eml", "rb"))
    client:sendmail(f, { dkim = dkim_opts { canonicalization = "simple" } })
    f:close()
    -- 5: a chunk function (spooled)
    local pos = 1
    client:sendmail(function()
      if pos > #raw then return nil end
      local piece = raw:sub(pos, pos + 6)
      pos = pos + 7
      return piece
    end, { dkim = dkim_opts() })
    -- 6, 7: sendmany, pipelined
    local results = client:sendmany({ smtp.message(notification()), raw }, { dkim = dkim_opts() })
    for _, r in ipairs(results) do assert.equal(250, r.reply.code) end
    client:quit()
    -- 8: smtp.send
    smtp.send { host = server.host, port = server.port, timeout = 10, mechanisms = {},
      message = smtp.message(notification()), dkim = dkim_opts() }
    local got = assert(server:wait_messages(before + 8))
    local data = {}
    for i = before + 1, before + 8 do
      data[#data + 1] = got[i].data
      assert.truthy(got[i].data:find("^DKIM%-Signature: "), got[i].data:sub(1, 200))
      assert.is_nil(got[i].data:find("hidden@", 1, true))
    end
    for i, line in ipairs(keys.verify_all(k.rsa2048, SEL, DOM, data)) do
      assert.equal("pass", line, "message " .. i)
    end
  end)

  it("SIZE announces the signed length of a message object", function()
    local seen = {}
    local client = smtp.connect { host = server.host, port = server.port, timeout = 10,
      debug = function(dir, line) seen[#seen + 1] = dir .. " " .. line end }
    local m = smtp.message(notification { dkim = dkim_opts() })
    client:sendmail(m)
    client:quit()
    local mail
    for _, l in ipairs(seen) do if l:find("MAIL FROM", 1, true) then mail = l end end
    assert.truthy(mail:find("SIZE=" .. #tostring(m), 1, true), mail)
  end)
end)

describe("Postfix delivery #interop #tls", function()
  local stack, alice, k

  setup(function()
    k = keys.make()
    stack = servers.mail_stack()
    alice = stack.users[1]
  end)
  teardown(function() if stack then stack:stop() end end)

  local function find_delivery(message_id)
    for _ = 1, 100 do
      for _, m in ipairs(stack:messages("bob")) do
        if m.data:find("Message-ID: " .. message_id, 1, true) then return m end
      end
      os.execute("sleep 0.1")
    end
    return nil
  end

  local function send(msg)
    local client = smtp.connect { host = "localhost", port = stack.ports.starttls, timeout = 10 }
    client:authenticate { tls = { ca_file = stack.certs.ca_cert }, tls_required = true,
      user = alice.user, password = alice.password }
    local report = client:sendmail(msg)
    client:quit()
    assert.equal(250, report.reply.code)
    return assert(find_delivery(msg:message_id()), "not delivered")
  end

  it("delivers a multipart message with attachments byte for byte as composed", function()
    local m = smtp.message(notification { to = "Bob <bob@" .. stack.domain .. ">" })
    local got = send(m)
    -- Postfix prepends Return-Path, Delivered-To, Received...; the rest is ours.
    assert.truthy(got.added:find("Received: ", 1, true), got.added)
    assert.equal(tostring(m), got.data)
  end)

  it("a DKIM-signed message still verifies after delivery, Postfix's headers included", function()
    local msgs, delivered = {}, {}
    for i, c in ipairs({ "relaxed/relaxed", "simple/simple" }) do
      msgs[i] = smtp.message(notification { to = "Bob <bob@" .. stack.domain .. ">",
        dkim = { domain = DOM, selector = SEL, key_pem = k.rsa2048.pem, canonicalization = c } })
      local got = send(msgs[i])
      assert.equal(tostring(msgs[i]), got.data)
      -- The Maildir file stores LF line ends; on the wire they were CRLF.
      delivered[i] = got.added:gsub("\r?\n", "\r\n") .. got.data
    end
    for i, line in ipairs(keys.verify_all(k.rsa2048, SEL, DOM, delivered)) do
      assert.equal("pass", line, "message " .. i)
    end
  end)
end)
