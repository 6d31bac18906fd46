-- bin/smtp-send as a user runs it, as a subprocess: exit codes 0/1/2/3/4,
-- TLS required whenever asked for (--tls-optional to opt out), server
-- text printed with its control bytes escaped, the --debug trace with
-- credentials masked, STARTTLS + AUTH against the
-- Postfix + Dovecot stack with the body read back from the Maildir,
-- attachments, and the progress bar under a pseudo-terminal (script(1)).
local servers = require "helpers.servers"
local scripted = require "helpers.scripted"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local BUILD = os.getenv("SMTP_BUILD") or "build"
local ROOT = P.run("pwd"):gsub("\n$", "")
if BUILD:sub(1, 1) ~= "/" then BUILD = ROOT .. "/" .. BUILD end
local ENV = ("env LUA_PATH=%s LUA_CPATH=%s"):format(P.q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;;"),
  P.q(BUILD .. "/?.so;;"))
local CMD = ENV .. " " .. V.interpreter .. " " .. P.q(ROOT .. "/bin/smtp-send")

local function has_message()
  local ok, smtp = pcall(require, "smtp")
  return ok and type(smtp.message) == "function"
end

-- Runs smtp-send with 'args' (already quoted), stdin from 'stdin' (text)
-- or /dev/null; returns exit code, stdout, stderr. Bounded by 'timeout'.
local dir = P.tempdir("smtp-send")
local n = 0
local function run(args, stdin, limit)
  n = n + 1
  local base = dir .. "/run" .. n
  local input = "/dev/null"
  if stdin then
    input = base .. ".in"
    P.write_file(input, stdin)
  end
  local cmd = ("timeout %d %s %s < %s > %s.out 2> %s.err"):format(limit or 60, CMD, args, P.q(input), base, base)
  local _, code = V.execute(cmd)
  return code, P.read_file(base .. ".out") or "", P.read_file(base .. ".err") or ""
end

local function q(...)
  local out = {}
  for i, a in ipairs({ ... }) do out[i] = P.q(a) end
  return table.concat(out, " ")
end

-- Independent of the library's own encoder.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return (s:gsub("..?.?", function(c)
    local a, b, d = c:byte(1, 3)
    local v = a * 65536 + (b or 0) * 256 + (d or 0)
    local out = {}
    for i = 1, 4 do
      local idx = math.floor(v / 64 ^ (4 - i)) % 64
      out[i] = B64:sub(idx + 1, idx + 1)
    end
    if not b then out[3], out[4] = "=", "=" elseif not d then out[4] = "=" end
    return table.concat(out)
  end))
end

-- A header's value as Python's email package decodes it (RFC 2047).
local function decoded_header(raw, name)
  local path = dir .. "/decode.eml"
  P.write_file(path, raw)
  local ok, out = P.try(("/usr/bin/python3 -c %s %s %s"):format(P.q(
    "import sys, email, email.policy; m = email.message_from_binary_file(open(sys.argv[1], 'rb'), " ..
    "policy=email.policy.default); sys.stdout.write(str(m[sys.argv[2]]))"), P.q(path), P.q(name)))
  assert(ok, out)
  return out
end

-- The text/plain body as Python's email package decodes it.
local function decoded_text(raw)
  local path = dir .. "/decode-body.eml"
  P.write_file(path, raw)
  local ok, out = P.try(("/usr/bin/python3 -c %s %s"):format(P.q(
    "import sys, email, email.policy; m = email.message_from_binary_file(open(sys.argv[1], 'rb'), " ..
    "policy=email.policy.default); sys.stdout.write(m.get_body(('plain',)).get_content())"), P.q(path)))
  assert(ok, out)
  return out
end

describe("bin/smtp-send #interop", function()
  describe("without a server", function()
    it("prints --help with the exit codes and every option, and exits 0", function()
      local code, out = run("--help")
      assert.equal(0, code)
      assert.truthy(out:find("Exit status: 0 sent; 1 usage error; 2 rejected", 1, true), out)
      local src = assert(P.read_file(ROOT .. "/bin/smtp-send"))
      -- Exit 4 (unknown outcome) is told apart from 3 (retry later), in both texts.
      local man = src:match("^.-\nEXAMPLES")
      assert.truthy(out:gsub("%s+", " "):find("4 unknown outcome: the server may have accepted the message: " ..
        "do not retry blindly", 1, true), out)
      assert.truthy(man:find("\n    4   unknown outcome", 1, true), man)
      assert.truthy(man:gsub("%s+", " "):find("may have accepted the message: do not retry blindly", 1, true))
      local flags = assert(src:match("local FLAGS = (%b{})"))
      for flag in flags:gmatch('%[?"?([%w%-]+)"?%]? = "') do
        assert.truthy(out:find("--" .. flag, 1, true), "--help does not mention --" .. flag)
        -- and the man-style comment at the top documents it too
        assert.truthy(src:match("^.-EXIT STATUS"):find("--" .. flag, 1, true), "man comment lacks --" .. flag)
      end
    end)

    it("--version names the library version", function()
      local code, out = run("--version")
      assert.equal(0, code)
      assert.equal("smtp-send (lua-smtp " .. require("smtp").VERSION .. ")\n", out)
    end)

    it("finds the checkout's library from its own path without LUA_PATH (run by its #! line)", function()
      -- The #! line names lua5.4; other Luas run the script by name.
      local runner = V.lua54 and "" or (V.interpreter .. " ")
      local cmd = ("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_PATH_5_3 " ..
        "-u LUA_CPATH_5_3 SMTP_BUILD=%s %s%s --version"):format(P.q(BUILD), runner, P.q(ROOT .. "/bin/smtp-send"))
      local ok, out = P.try(cmd)
      assert.is_true(ok, out)
      assert.truthy(out:find("^smtp%-send %(lua%-smtp "), out)
    end)

    local bad = {
      { "an unknown option", "--server localhost --frm a@example.org --to b@example.org", "unknown option --frm" },
      { "a password on the command line", "--password secret --from a@example.org --to b@example.org",
        "--password is not accepted" },
      { "a missing --from", "--to b@example.org", "--from is required" },
      { "no recipient", "--from a@example.org", "at least one --to" },
      { "a header with CR/LF", "--from a@example.org --to b@example.org " .. q("--header", "X-A: 1\r\nBcc: x@y"),
        "CR, LF or NUL" },
      { "a subject with LF", "--from a@example.org --to b@example.org " .. q("--subject", "a\nb"), "CR, LF or NUL" },
      { "a header that has its own flag", "--from a@example.org --to b@example.org " ..
        q("--header", "Subject: x"), "use --subject for Subject" },
      { "a header generated from the body", "--from a@example.org --to b@example.org " ..
        q("--header", "Content-Type: text/html"), "is generated" },
      { "a malformed header", "--from a@example.org --to b@example.org " .. q("--header", "no colon"),
        "Name: value" },
      { "a flag without its value", "--from a@example.org --to", "--to needs a value" },
      { "an IPv6 address without brackets", "--server ::1:25 --from a@example.org --to b@example.org", "brackets" },
      { "--password-file - when the body comes from stdin",
        "--user u --password-file - --from a@example.org --to b@example.org", "give --body-file" },
      { "--user without --password-file", "--user u --from a@example.org --to b@example.org", "--password-file" },
      { "--tls-optional with --tls-required", "--tls-optional --tls-required --from a@example.org --to b@example.org",
        "contradict" },
      { "--tls-optional with implicit --tls", "--tls --tls-optional --from a@example.org --to b@example.org",
        "does not apply to --tls" },
      { "an unreadable attachment", "--from a@example.org --to b@example.org --attach /nonexistent/file",
        "cannot read attachment" },
      { "a bad address", "--from 'a@' --to b@example.org", "" },
    }
    for _, case in ipairs(bad) do
      it("exits 1 for " .. case[1] .. ", before connecting", function()
        -- Port 9 on loopback: nothing listens; a connection attempt would exit 3.
        local code, out, err = run("--server 127.0.0.1:9 " .. case[2], "body\n")
        assert.equal(1, code, err)
        assert.equal("", out)
        assert.truthy(err:find(case[3], 1, true), err)
      end)
    end

    it("exits 3 when the server is down (connection refused)", function()
      local code, _, err = run(("--server 127.0.0.1:%d --timeout 5 --from a@example.org --to b@example.org")
        :format(P.free_port()), "body\n")
      assert.equal(3, code, err)
      assert.truthy(err:find("io", 1, true), err)
    end)
  end)

  describe("against scripted servers", function()
    it("exits 3 for a 421 greeting", function()
      local h = scripted.start("S: 421 4.3.2 Service not available, closing channel\n")
      local code, _, err = run(("--server 127.0.0.1:%d --timeout 5 --from a@example.org --to b@example.org")
        :format(h.port), "body\n")
      h:result(5)
      assert.equal(3, code, err)
      assert.truthy(err:find("transient 421", 1, true), err)
    end)

    it("exits 3 for a 451 to MAIL FROM and says to try again", function()
      local h = scripted.start(table.concat({
        "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250 mx",
        "C: MAIL FROM:<a@example.org>", "S: 451 4.3.0 Try again later",
        "C: RSET", "S: 250 ok", "" }, "\n"))
      local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 --from a@example.org " ..
        "--to b@example.org"):format(h.port), "body\n")
      local ok, why = h:result(5)
      assert.is_true(ok, why)
      assert.equal(3, code, err)
      assert.equal("", out)
      assert.truthy(err:find("transient 451 4.3.0 at MAIL FROM:<a@example.org>", 1, true), err)
    end)

    -- The server never offers STARTTLS (as when an attacker strips it) but
    -- offers a mechanism whose answer can be cracked offline.
    local STRIPPED = "S: 220 mx ESMTP\nC: EHLO c.example\nS: 250-mx\nS: 250 AUTH CRAM-MD5\n"
    local function pwfile()
      local path = dir .. "/stripped.pw"
      P.write_file(path, "s3cret!\n", "0600")
      return path
    end

    for _, flags in ipairs({ "--starttls", "--cafile /etc/ssl/certs/ca-certificates.crt",
      "--insecure", "--starttls --tls-required" }) do
      it("exits 3 (tls) with " .. flags .. " when STARTTLS is not offered, sending no AUTH and no MAIL", function()
        local h = scripted.start(STRIPPED)
        local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 %s --user alice " ..
          "--password-file %s --from a@example.org --to b@example.org"):format(h.port, flags, P.q(pwfile())),
          "body\n")
        local ok, why, received = h:result(10)
        assert.is_true(ok, why)
        assert.equal(3, code, err)
        assert.equal("", out)
        assert.truthy(err:find("^smtp%-send: tls"), err)
        local sent = received[1] or ""
        assert.truthy(sent:find("^EHLO c%.example\r\n"), sent)
        assert.is_nil(sent:find("AUTH", 1, true), sent)
        assert.is_nil(sent:find("MAIL", 1, true), sent)
      end)
    end

    it("--tls-optional goes on in plaintext when STARTTLS is not offered, and sends (exit 0)", function()
      local h = scripted.start(table.concat({
        "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250 mx",
        "C: MAIL FROM:<a@example.org>", "S: 250 ok", "C: RCPT TO:<b@example.org>", "S: 250 ok",
        "C: DATA", "S: 354 go", "BODY", "S: 250 2.0.0 queued as ABC123",
        "C: QUIT", "S: 221 bye", "" }, "\n"))
      local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 --tls-optional " ..
        "--from a@example.org --to b@example.org"):format(h.port), "body\n")
      local ok, why = h:result(10)
      assert.is_true(ok, why)
      assert.equal(0, code, err)
      assert.truthy(out:find("^sent to 1 of 1 recipient: 250 2.0.0 queued as ABC123\n$"), out)
    end)

    it("exits 4, not 3, when the connection drops after the final dot (the server may have the message)", function()
      local h = scripted.start(table.concat({
        "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250 mx",
        "C: MAIL FROM:<a@example.org>", "S: 250 ok", "C: RCPT TO:<b@example.org>", "S: 250 ok",
        "C: DATA", "S: 354 go", "BODY", "CLOSE", "" }, "\n"))
      local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 --from a@example.org " ..
        "--to b@example.org"):format(h.port), "body\n")
      -- (The script's own result is not checked: its CLOSE ends it with an error.)
      h:result(10)
      assert.equal(4, code, err)
      assert.equal("", out)
      assert.truthy(err:find("^smtp%-send: io", 1), err)
      assert.truthy(err:find("may have accepted the message", 1, true), err)
    end)

    it("exits 3 when the connection drops before the data went out (nothing was accepted)", function()
      local h = scripted.start(table.concat({
        "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250 mx",
        "C: MAIL FROM:<a@example.org>", "S: 250 ok", "C: RCPT TO:<b@example.org>", "S: 250 ok",
        "C: DATA", "CLOSE", "" }, "\n"))
      local code, _, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 --from a@example.org " ..
        "--to b@example.org"):format(h.port), "body\n")
      h:result(10)
      assert.equal(3, code, err)
      assert.is_nil(err:find("may have accepted", 1, true), err)
    end)

    describe("server text with terminal controls", function()
      -- Bytes a terminal would act on: C0 but TAB and LF (our own line
      -- breaks), and DEL.
      local CONTROL = "[%z\1-\8\11-\31\127]"
      local HOSTILE = "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m"

      it("is printed escaped in the trace, the refused-recipient line and the result line", function()
        local h = scripted.start(table.concat({
          "S: 220 mx " .. HOSTILE .. " ESMTP", "C: EHLO c.example", "S: 250 mx",
          "C: MAIL FROM:<a@example.org>", "S: 250 ok",
          "C: RCPT TO:<b@example.org>", "S: 250 ok",
          "C: RCPT TO:<c@example.org>", "S: 550 5.1.1 no " .. HOSTILE .. " such user",
          "C: DATA", "S: 354 go", "BODY", "S: 250 2.0.0 queued " .. HOSTILE .. " as X1",
          "C: QUIT", "S: 221 bye", "" }, "\n"))
        local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 --debug " ..
          "--from a@example.org --to b@example.org --to c@example.org"):format(h.port), "body\n")
        local ok, why = h:result(10)
        assert.is_true(ok, why)
        assert.equal(0, code, err)
        assert.is_nil(out:find(CONTROL), out)
        assert.is_nil(err:find(CONTROL), err)
        local shown = "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31m"
        assert.truthy(err:find("S: 220 mx " .. shown .. " ESMTP\n", 1, true), err)
        assert.truthy(err:find("recipient refused: c@example.org: permanent 550 5.1.1 at RCPT TO:<c@example.org>: " ..
          "no " .. shown .. " such user", 1, true), err)
        assert.truthy(out:find("sent to 1 of 2 recipients: 250 2.0.0 queued " .. shown .. " as X1\n", 1, true), out)
      end)

      it("is printed escaped in the error line (exit 2)", function()
        local h = scripted.start(table.concat({
          "S: 220 mx ESMTP", "C: EHLO c.example", "S: 250 mx",
          "C: MAIL FROM:<a@example.org>", "S: 550 5.7.1 go away " .. HOSTILE .. "\\rnow",
          "C: RSET", "S: 250 ok", "" }, "\n"))
        local code, out, err = run(("--server 127.0.0.1:%d --ehlo c.example --timeout 5 " ..
          "--from a@example.org --to b@example.org"):format(h.port), "body\n")
        h:result(10)
        assert.equal(2, code, err)
        assert.equal("", out)
        assert.is_nil(err:find(CONTROL), err)
        assert.truthy(err:find("permanent 550 5.7.1 at MAIL FROM:<a@example.org>: go away \\x1b]0;owned", 1, true), err)
      end)
    end)
  end)

  describe("against aiosmtpd", function()
    local server
    setup(function() server = servers.aiosmtpd { pipelining = true } end)
    teardown(function() if server then server:stop() end end)

    local function last_message(before)
      local got = assert(server:wait_messages(before + 1))
      return got[before + 1]
    end

    it("composes a text/plain UTF-8 message (To, Cc, encoded Subject, no Bcc) and exits 0", function()
      local before = #server:messages()
      local code, out, err = run(("--server 127.0.0.1:%d --from %s --to b@example.org --cc c@example.org " ..
        "--bcc hidden@example.org --subject %s --header 'X-Mailer-Test: yes' --header 'Reply-To: r@example.org'")
        :format(server.port, P.q("Ålice <a@example.org>"), P.q("Grüße")), "Hello\nWörld\n")
      assert.equal(0, code, err)
      assert.equal("", err)
      assert.truthy(out:find("^sent to 3 of 3 recipients: 250"), out)
      local m = last_message(before)
      assert.equal("a@example.org", m.mail_from)
      assert.same({ "b@example.org", "c@example.org", "hidden@example.org" }, m.rcpt_tos)
      local head, body = m.data:match("^(.-\r\n)\r\n(.*)$")
      -- A Bcc field, not the letters "bcc" (a random Message-ID may hold them).
      assert.is_nil(("\n" .. head:lower()):find("\nbcc%s*:"), head)
      assert.is_nil(m.data:find("hidden@", 1, true))
      assert.truthy(head:find("To: b@example.org\r\n", 1, true), head)
      assert.truthy(head:find("Cc: c@example.org\r\n", 1, true), head)
      assert.truthy(head:find("X-Mailer-Test: yes\r\n", 1, true), head)
      assert.truthy(head:find("Reply-To: r@example.org\r\n", 1, true), head)
      assert.truthy(head:find("MIME-Version: 1.0\r\n", 1, true), head)
      assert.truthy(head:find("Date: ", 1, true), head)
      assert.truthy(head:find("Message-ID: <", 1, true), head)
      assert.equal("Ålice <a@example.org>", decoded_header(m.data, "From"))
      assert.equal("Grüße", decoded_header(m.data, "Subject"))
      assert.is_nil(head:find("[\128-\255]"), "raw 8-bit bytes in the header")
      if not has_message() then
        assert.truthy(head:find("Content-Type: text/plain; charset=utf-8\r\n", 1, true), head)
        assert.truthy(head:find("Content-Transfer-Encoding: 8bit\r\n", 1, true), head)
        assert.equal("Hello\r\nWörld\r\n", body)
      end
    end)

    it("reaches an IPv6 server written [::1]:port", function()
      local v6 = servers.aiosmtpd { host = "::1" }
      local code, out, err = run(("--server [::1]:%d --from a@example.org --to b@example.org"):format(v6.port),
        "over IPv6\n")
      local got = v6:wait_messages(1)
      v6:stop()
      assert.equal(0, code, err)
      assert.truthy(out:find("^sent to 1 of 1 recipient: 250"), out)
      assert.truthy(got and got[1].data:find("over IPv6", 1, true))
    end)

    it("--quiet prints nothing on success", function()
      local code, out, err = run(("--quiet --server 127.0.0.1:%d --from a@example.org --to b@example.org")
        :format(server.port), "quiet\n")
      assert.equal(0, code)
      assert.equal("", out)
      assert.equal("", err)
    end)

    describe("with AUTH over plaintext", function()
      local authd
      setup(function() authd = servers.aiosmtpd { auth = { u = "pw" } } end)
      teardown(function() if authd then authd:stop() end end)

      it("--password-file - reads the password from stdin when --body-file gives the body", function()
        -- No TLS here, so the password mechanism needs --allow-plaintext.
        local body = dir .. "/stdin-body.txt"
        P.write_file(body, "from a file\n")
        local code, _, err = run(("--server 127.0.0.1:%d --allow-plaintext --mechanism PLAIN --user u " ..
          "--password-file - --body-file %s --from a@example.org --to b@example.org"):format(authd.port, P.q(body)),
          "pw\n")
        assert.equal(0, code, err)
        local m = assert(authd:wait_messages(1))[1]
        assert.equal("u", m.auth)
        assert.truthy(m.data:find("\r\n\r\nfrom a file\r\n$"))
      end)

      it("refuses to send the password in plaintext without --allow-plaintext, and says so", function()
        local pw = dir .. "/plain.pw"
        P.write_file(pw, "pw\n", "0600")
        local before = #authd:messages()
        local code, _, err = run(("--server 127.0.0.1:%d --user u --password-file %s --from a@example.org " ..
          "--to b@example.org --debug"):format(authd.port, P.q(pw)), "x\n")
        assert.is_true(code == 1 or code == 2, err)
        assert.truthy(err:find("--allow-plaintext", 1, true), err)
        assert.is_nil(err:find("C: AUTH", 1, true), err)
        assert.is_nil(err:find("C: MAIL", 1, true), err)
        assert.equal(before, #authd:messages())
      end)
    end)

    it("sends attachments through smtp.message, or exits 1 saying it cannot", function()
      local file = dir .. "/data.bin"
      local content = ("\0\1\2binary attachment\255"):rep(200)
      P.write_file(file, content)
      local before = #server:messages()
      local code, _, err = run(("--server 127.0.0.1:%d --from a@example.org --to b@example.org --subject att " ..
        "--attach %s"):format(server.port, P.q(file)), "see attached\n")
      if not has_message() then
        assert.equal(1, code, err)
        assert.truthy(err:find("--attach needs smtp.message", 1, true), err)
        pending("smtp.message is not available yet: the attachment itself cannot be checked")
        return
      end
      assert.equal(0, code, err)
      local data = last_message(before).data
      assert.truthy(data:find("multipart/mixed", 1, true), data:sub(1, 2000))
      assert.truthy(data:find("data.bin", 1, true))
      assert.truthy(data:find("see attached", 1, true))
      assert.truthy(data:find(b64(content:sub(1, 57)), 1, true), "attachment bytes not found in base64")
    end)

    describe("progress bar", function()
      local body
      setup(function()
        body = dir .. "/big-body.txt"
        P.write_file(body, ("0123456789 a line of a large body, progress bar test\n"):rep(60000)) -- ~3.2 MB
      end)

      it("is drawn on a terminal (script(1) pseudo-terminal) with a percentage and a rate", function()
        local before = #server:messages()
        local inner = ("%s --server 127.0.0.1:%d --from a@example.org --to b@example.org --body-file %s")
          :format(CMD, server.port, P.q(body))
        local out_file = dir .. "/pty.out"
        local _, code = V.execute(("timeout 60 script -qfec %s /dev/null < /dev/null > %s 2>&1")
          :format(P.q(inner), P.q(out_file)))
        local out = P.read_file(out_file) or ""
        assert.equal(0, code, out)
        assert.truthy(out:find("%[#+%-*%] +%d+%%"), out)
        assert.truthy(out:find("100%", 1, true), out)
        assert.truthy(out:find("MB/s", 1, true), out)
        assert.truthy(out:find("/3.2 MB", 1, true), out)
        assert.truthy(#last_message(before).data > 3000000)
      end)

      it("is not drawn when stderr is not a terminal", function()
        local code, out, err = run(("--server 127.0.0.1:%d --from a@example.org --to b@example.org --body-file %s")
          :format(server.port, P.q(body)))
        assert.equal(0, code, err)
        assert.equal("", err)
        assert.is_nil(out:find("MB/s", 1, true))
      end)

      it("is not drawn for a small message, even on a terminal", function()
        local inner = ("%s --server 127.0.0.1:%d --from a@example.org --to b@example.org --body-file /etc/hostname")
          :format(CMD, server.port)
        local out_file = dir .. "/pty-small.out"
        local _, code = V.execute(("timeout 60 script -qfec %s /dev/null < /dev/null > %s 2>&1")
          :format(P.q(inner), P.q(out_file)))
        local out = P.read_file(out_file) or ""
        assert.equal(0, code, out)
        assert.is_nil(out:find("MB/s", 1, true), out)
      end)
    end)
  end)

  describe("against Dovecot LMTP", function()
    local lmtp = require "helpers.lmtp"
    local server
    setup(function() server = lmtp.start { users = { "alice", "bob" } } end)
    teardown(function() if server then server:stop() end end)

    it("--lmtp delivers over a UNIX socket; a refused recipient is listed and the rest delivered", function()
      local code, out, err = run(("--lmtp --server %s --from sender@example.org --to alice --to nobody " ..
        "--subject cli-lmtp"):format(P.q(server.socket)), "over LMTP\n")
      assert.equal(0, code, err)
      assert.truthy(out:find("sent to 1 of 2 recipients", 1, true), out)
      assert.truthy(err:find("recipient refused: nobody: permanent 550", 1, true), err)
      local raw = P.wait_for(10, function()
        for _, m in ipairs(server:messages("alice")) do
          if m:find("Subject: cli-lmtp", 1, true) then return m end
        end
      end)
      assert.truthy(raw and raw:find("over LMTP", 1, true))
    end)

    it("refuses a socket path without --lmtp (exit 1)", function()
      local code, _, err = run(("--server %s --from s@example.org --to alice@example.org"):format(
        P.q(server.socket)), "x\n")
      assert.equal(1, code, err)
      assert.truthy(err:find("needs --lmtp", 1, true), err)
    end)
  end)

  describe("against Postfix + Dovecot #tls", function()
    local stack, alice, pwfile
    setup(function()
      stack = servers.mail_stack()
      alice = stack.users[1]
      pwfile = dir .. "/alice.pw"
      P.write_file(pwfile, alice.password .. "\n", "0600")
    end)
    teardown(function() if stack then stack:stop() end end)

    local function delivered(subject)
      return P.wait_for(10, function()
        for _, m in ipairs(stack:messages("bob")) do
          if m.data:find("Subject: " .. subject, 1, true) then return m end
        end
      end)
    end

    local function common(port)
      return ("--server localhost:%d --starttls --tls-required --cafile %s --user %s --password-file %s " ..
        "--from alice@%s --timeout 10"):format(port, P.q(stack.certs.ca_cert), alice.user, P.q(pwfile),
        stack.domain)
    end

    it("sends over STARTTLS + AUTH and the body arrives intact (exit 0)", function()
      local body = "First line.\n.A line with a leading dot.\nLast line: ünïcödé.\n"
      local code, out, err = run(common(stack.ports.starttls) .. " --to bob@" .. stack.domain ..
        " --subject cli-starttls", body)
      assert.equal(0, code, err)
      assert.truthy(out:find("queued as", 1, true), out)
      local m = assert(delivered("cli-starttls"), "not delivered")
      assert.truthy(m.added:find("using TLS", 1, true), m.added)
      assert.equal(body, decoded_text(m.data))
      if not has_message() then
        assert.equal(body:gsub("\n", "\r\n"), m.data:match("\r\n\r\n(.*)$"))
      end
    end)

    it("--debug traces the dialogue on stderr without the password or its base64", function()
      local code, out, err = run(common(stack.ports.starttls) .. " --mechanism PLAIN --debug --to bob@" ..
        stack.domain .. " --subject cli-debug", "traced\n")
      assert.equal(0, code, err)
      assert.truthy(err:find("C: STARTTLS", 1, true), err)
      assert.truthy(err:find("C: AUTH PLAIN ***", 1, true), err)
      assert.truthy(err:find("S: 235", 1, true), err)
      assert.truthy(err:find("C: MAIL FROM:<alice@" .. stack.domain .. ">", 1, true), err)
      assert.is_nil(err:find(alice.password, 1, true))
      assert.is_nil(err:find(b64("\0" .. alice.user .. "\0" .. alice.password), 1, true))
      assert.is_nil(err:find(b64(alice.password), 1, true))
      assert.is_nil(out:find("C: ", 1, true))
    end)

    it("sends over implicit TLS with --tls (exit 0)", function()
      local code, _, err = run(("--server localhost:%d --tls --cafile %s --user %s --password-file %s " ..
        "--from alice@%s --to bob@%s --subject cli-implicit"):format(stack.ports.smtps,
        P.q(stack.certs.ca_cert), alice.user, P.q(pwfile), stack.domain, stack.domain), "implicit\n")
      assert.equal(0, code, err)
      assert.truthy(delivered("cli-implicit"))
    end)

    it("exits 0 and lists the refused one when only some recipients are refused", function()
      local code, out, err = run(common(stack.ports.starttls) .. " --to bob@" .. stack.domain ..
        " --to nobody@" .. stack.domain .. " --subject cli-partial", "partial\n")
      assert.equal(0, code, err)
      assert.truthy(out:find("sent to 1 of 2 recipients", 1, true), out)
      assert.truthy(err:find("recipient refused: nobody@" .. stack.domain .. ": permanent 550 5.1.1", 1, true), err)
    end)

    it("exits 2 when Postfix refuses every recipient with 550", function()
      local code, out, err = run(common(stack.ports.starttls) .. " --to nobody@" .. stack.domain, "x\n")
      assert.equal(2, code, err)
      assert.equal("", out)
      assert.truthy(err:find("permanent 550 5.1.1", 1, true), err)
      assert.truthy(err:find("Bad destination mailbox address", 1, true), err)
    end)

    it("exits 2 for a wrong password, without showing it", function()
      local wrong = dir .. "/wrong.pw"
      P.write_file(wrong, "not-the-password\n", "0600")
      local code, _, err = run(("--server localhost:%d --starttls --cafile %s --user %s --password-file %s " ..
        "--from alice@%s --to bob@%s --debug"):format(stack.ports.starttls, P.q(stack.certs.ca_cert), alice.user,
        P.q(wrong), stack.domain, stack.domain), "x\n")
      assert.equal(2, code, err)
      assert.truthy(err:find("authentication 535", 1, true), err)
      assert.is_nil(err:find("not-the-password", 1, true))
    end)

    it("exits 3 when --tls-required cannot be met (no STARTTLS on the plain port)", function()
      local code, _, err = run(("--server localhost:%d --tls-required --cafile %s --from alice@%s --to bob@%s")
        :format(stack.ports.plain, P.q(stack.certs.ca_cert), stack.domain, stack.domain), "x\n")
      assert.equal(3, code, err)
      assert.truthy(err:find("tls", 1, true), err)
    end)

    it("exits 3 when the certificate is not trusted, and 0 with --insecure", function()
      local code, _, err = run(("--server localhost:%d --starttls --tls-required --user %s --password-file %s " ..
        "--from alice@%s --to bob@%s"):format(stack.ports.starttls, alice.user, P.q(pwfile), stack.domain,
        stack.domain), "x\n")
      assert.equal(3, code, err)
      assert.truthy(err:find("^smtp%-send: tls"), err)
      -- Unverified TLS counts as plaintext for the password.
      code, _, err = run(("--server localhost:%d --insecure --tls-required --allow-plaintext --user %s " ..
        "--password-file %s " ..
        "--from alice@%s --to bob@%s --subject cli-insecure"):format(stack.ports.starttls, alice.user, P.q(pwfile),
        stack.domain, stack.domain), "x\n")
      assert.equal(0, code, err)
    end)
  end)
end)

-- Several --server options and --retry go through smtp.pool: failover,
-- retry with backoff to what is still pending, and the exit codes kept.
describe("bin/smtp-send with several servers and --retry #interop #pool", function()
  local GREET = "S: 220 mx ESMTP\nC: EHLO client.example\nS: 250-mx\nS: 250 ENHANCEDSTATUSCODES\n"
  local ENVELOPE = "C: MAIL FROM:<a@example.org>\nS: 250 2.1.0 ok\nC: RCPT TO:<b@example.org>\nS: 250 2.1.5 ok\n"
  local BASE = "--ehlo client.example --timeout 5 --from a@example.org --to b@example.org --subject pool"
  local started = {}

  local function scripted_server(transcript)
    local h = scripted.start(transcript)
    started[#started + 1] = h
    return h
  end

  local function dead_port()
    local h = scripted.start("S: 220 x\n")
    local port = h.port
    h:stop()
    return port
  end

  after_each(function()
    for _, h in ipairs(started) do h:stop() end
    started = {}
  end)

  it("fails over from a server that refuses connections to the next --server", function()
    local aio = servers.aiosmtpd()
    local dead = dead_port()
    local code, out, err = run(("--server 127.0.0.1:%d --server 127.0.0.1:%d %s"):format(dead, aio.port, BASE), "hi\n")
    aio:stop()
    assert.equal(0, code, err)
    assert.truthy(out:find(("via 127.0.0.1:%d after 2 tries (127.0.0.1:%d, 127.0.0.1:%d)"):format(aio.port, dead,
      aio.port), 1, true), out)
    assert.equal(1, #aio:messages())
  end)

  it("retries a 4xx after a backoff with --retry", function()
    local h = scripted_server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 451 4.3.0 try later\n"
      .. "C: RSET\nS: 250 ok\nC: RSET\nS: 250 ok\n" .. ENVELOPE
      .. "C: DATA\nS: 354 go\nBODY\nS: 250 2.0.0 queued as CLI1\nC: QUIT\nS: 221 bye\n")
    local t0 = P.now()
    local code, out, err = run(("--server 127.0.0.1:%d --retry 2 %s"):format(h.port, BASE), "hi\n")
    local elapsed = P.now() - t0
    local ok, why = h:result(10)
    assert.equal(0, code, err)
    assert.is_true(ok, why)
    assert.truthy(out:find("after 2 tries", 1, true), out)
    -- The first backoff is 1 s +- 20%.
    assert.is_true(elapsed >= 0.8, tostring(elapsed))
  end)

  it("exits 3 when every server fails, and 1 for a bad --retry", function()
    local code, _, err = run(("--server 127.0.0.1:%d --server 127.0.0.1:%d %s"):format(dead_port(), dead_port(), BASE),
      "hi\n")
    assert.equal(3, code, err)
    assert.truthy(err:find("^smtp%-send: io"), err)
    code, _, err = run(("--server 127.0.0.1:25 --retry 0 %s"):format(BASE), "hi\n")
    assert.equal(1, code, err)
    assert.truthy(err:find("--retry", 1, true), err)
  end)

  it("does not retry a 5xx (exit 2) nor an unknown outcome (exit 4)", function()
    local h = scripted_server(GREET .. "C: MAIL FROM:<a@example.org>\nS: 550 5.7.1 no\nC: RSET\nS: 250 ok\n"
      .. "C: QUIT\nS: 221 bye\n")
    local code, _, err = run(("--server 127.0.0.1:%d --retry 3 %s"):format(h.port, BASE), "hi\n")
    local ok, why = h:result(10)
    assert.equal(2, code, err)
    assert.is_true(ok, why)
    -- The connection breaks after the whole message went out: a second
    -- try would find no greeting (one connection scripted) and time out.
    h = scripted_server(GREET .. ENVELOPE .. "C: DATA\nS: 354 go\nBODY\nCLOSE\n")
    code, _, err = run(("--server 127.0.0.1:%d --retry 3 %s"):format(h.port, BASE), "hi\n")
    assert.equal(4, code, err)
    assert.truthy(err:find("may have accepted", 1, true), err)
  end)
end)
