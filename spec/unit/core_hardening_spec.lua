-- Regression tests for the C core findings of the 2026-12 security review
-- (M3, L1, L4, L11, the C part of L14) and for reply validation (RFC 5321
-- 4.2). Each case talks to smtp.core directly, over a LuaSocket listener
-- on loopback when it needs a peer; the client-level check goes through
-- the scripted server. Runs under 5.1/LuaJIT too: no 5.3-only syntax.
local core = require "smtp.core"
local socket = require "socket"

local now = core.now

-- A listener on 127.0.0.1 and a helper to take its one connection.
local function listen()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local _, port = srv:getsockname()
  return srv, tonumber(port)
end

local function accept(srv, wait)
  srv:settimeout(wait or 2)
  local peer = srv:accept()
  if peer then peer:settimeout(2) end
  return peer
end

-- Everything the peer receives until the other side closes.
local function read_all(peer)
  local data, _, partial = peer:receive("*a")
  return data or partial or ""
end

-- A connected Conn and the server end of it.
local function pair()
  local srv, port = listen()
  local c = assert(core.connect("127.0.0.1", tostring(port), now() + 5))
  local peer = assert(accept(srv))
  srv:close()
  assert(c:set_deadline(now() + 5) ~= false)
  return c, peer
end

local function feed_all(input, p)
  p = p or core.reply_parser()
  local ok, kind, msg = p:feed(input)
  if not ok then return nil, kind, msg end
  local replies = {}
  while true do
    local r, k, m = p:next()
    if r == nil then return nil, k, m end
    if r == false then return replies end
    replies[#replies + 1] = r
  end
end

describe("smtp.core hardening", function()
  describe("M3: HTTP CONNECT and a long port string", function()
    it("refuses a 3000-character port with kind usage and sends the proxy nothing", function()
      local srv, pport = listen()
      local port = string.rep("0", 2998) .. "25"
      local c, kind, msg = core.connect("mail.example.org", port, now() + 2, nil,
        { type = "http", host = "127.0.0.1", port = tostring(pport) })
      local peer = accept(srv, 0.2)
      local got = peer and read_all(peer) or ""
      srv:close()
      if peer then peer:close() end
      assert.is_nil(c)
      assert.equal("usage", kind)
      assert.truthy(msg:find("port", 1, true), msg)
      assert.is_true(#msg < 256, "the message should not echo the whole port")
      assert.equal("", got)
    end)

    it("takes ports of 1 to 5 digits from 1 to 65535 only", function()
      -- A closed proxy port: a valid target port gets as far as connecting
      -- (kind io), an invalid one is refused first (kind usage).
      local srv, pport = listen()
      srv:close()
      local proxy = { type = "http", host = "127.0.0.1", port = tostring(pport) }
      for _, bad in ipairs({ "0", "00000", "65536", "99999", "000025", "1234567", "+25", "-25",
        " 25", "25 ", "2 5", "0x19", "" }) do
        local c, kind = core.connect("mail.example.org", bad, now() + 2, nil, proxy)
        assert.is_nil(c)
        assert.equal("usage", kind, "port '" .. bad .. "'")
      end
      for _, good in ipairs({ "1", "25", "00025", "65535" }) do
        local c, kind = core.connect("mail.example.org", good, now() + 2, nil, proxy)
        assert.is_nil(c)
        assert.equal("io", kind, "port '" .. good .. "'")
      end
      proxy.type = "socks5"
      local c, kind = core.connect("mail.example.org", string.rep("0", 40) .. "25", now() + 2, nil, proxy)
      assert.is_nil(c)
      assert.equal("usage", kind)
    end)
  end)

  describe("L1: conn:send with number elements", function()
    it("sends 3000 numbers intact under garbage collector pressure", function()
      local c, peer = pair()
      local t, expect = {}, {}
      -- Same-length conversions, so freed strings would be reused. The
      -- expected text is made only after the send: an interned copy
      -- alive now would keep the converted string alive too.
      for i = 1, 3000 do t[i] = 100000 + i + 0.5 end
      -- A full cycle at every allocation: each conversion frees the
      -- previous unanchored one (the review's eager-GC reproduction).
      -- The pause applies from the end of a cycle, hence the collect.
      local had, mode = pcall(collectgarbage, "incremental")
      local pause = collectgarbage("setpause", 0)
      local stepmul = collectgarbage("setstepmul", 1000)
      collectgarbage("collect")
      local ok, kind, msg = c:send(t)
      collectgarbage("setpause", pause)
      collectgarbage("setstepmul", stepmul)
      if had and mode == "generational" then collectgarbage("generational") end
      c:close()
      local got = read_all(peer)
      peer:close()
      for i = 1, 3000 do expect[i] = tostring(t[i]) end
      assert.is_true(ok, tostring(kind) .. ": " .. tostring(msg))
      local want = table.concat(expect)
      -- A boolean, so a failure does not print 24 KB twice.
      assert.is_true(got == want, ("%d bytes received, %d expected, first difference near %q")
        :format(#got, #want, got:sub(1, 24)))
    end)

    it("refuses elements that are neither strings nor numbers with a clear error", function()
      local c, peer = pair()
      local ok, err = pcall(c.send, c, { "a", {}, "b" })
      c:close()
      peer:close()
      assert.is_false(ok)
      assert.truthy(tostring(err):find("element 2", 1, true), tostring(err))
    end)
  end)

  describe("L11: NaN, infinite and absurd deadlines", function()
    local bad = { { "NaN", 0 / 0 }, { "inf", math.huge }, { "-inf", -math.huge } }

    for _, row in ipairs(bad) do
      it("refuses a " .. row[1] .. " deadline in connect with kind usage", function()
        local srv, port = listen()
        local c, kind, msg = core.connect("127.0.0.1", tostring(port), row[2])
        srv:close()
        if c then c:close() end
        assert.is_nil(c)
        assert.equal("usage", kind)
        assert.truthy(msg:find("deadline", 1, true), msg)
      end)

      it("refuses a " .. row[1] .. " deadline in set_deadline and fails closed", function()
        local c, peer = pair()
        local ok, kind = c:set_deadline(row[2])
        assert.is_nil(ok)
        assert.equal("usage", kind)
        -- The refused deadline does not mean "wait forever": the next
        -- wait ends at once.
        local t0 = now()
        local data, rkind = c:receive_some()
        c:close()
        peer:close()
        assert.is_nil(data)
        assert.equal("timeout", rkind)
        assert.is_true(now() - t0 < 1)
      end)
    end

    it("refuses a deadline 1e9 seconds or more from now and accepts a year", function()
      local c, peer = pair()
      local ok, kind = c:set_deadline(now() + 2e9)
      assert.is_nil(ok)
      assert.equal("usage", kind)
      assert.is_true(c:set_deadline(now() + 365 * 86400))
      assert.is_true(c:set_deadline(nil))
      assert.is_true(c:set_deadline(now() - 10))
      c:close()
      peer:close()
      local srv, port = listen()
      local c2, kind2 = core.connect("127.0.0.1", tostring(port), now() + 1e12)
      srv:close()
      if c2 then c2:close() end
      assert.is_nil(c2)
      assert.equal("usage", kind2)
    end)

    it("refuses a non-finite block timeout in send_body before sending", function()
      for _, v in ipairs({ 0 / 0, math.huge, 1e12 }) do
        local c, peer = pair()
        local n, kind = c:send_body({ "x\r\n", { data = "abc" } }, "data", nil, nil, v)
        c:close()
        local got = read_all(peer)
        peer:close()
        assert.is_nil(n)
        assert.equal("usage", kind)
        assert.equal("", got)
      end
    end)
  end)

  describe("L4: total size of one reply", function()
    -- Lines of 'len' bytes each (line end included) adding up to 'total'.
    local function reply_of(total)
      local lines, left = {}, total
      while left > 0 do
        local len = left > 60000 and 60000 or left
        if left - len > 0 and left - len < 8 then len = len - 8 end
        left = left - len
        local sep = left > 0 and "-" or " "
        lines[#lines + 1] = "250" .. sep .. string.rep("x", len - 6) .. "\r\n"
      end
      return table.concat(lines)
    end

    it("accepts a reply of exactly 256 KiB and refuses one byte more", function()
      local ok = reply_of(262144)
      assert.equal(262144, #ok)
      assert.equal(5, #assert(feed_all(ok))[1].lines)
      local r, kind, msg = feed_all(reply_of(262145))
      assert.is_nil(r)
      assert.equal("protocol", kind)
      assert.truthy(msg:find("reply too long", 1, true), msg)
    end)

    it("refuses 1,000 lines of 60 KB long before 64 MB are buffered", function()
      local p = core.reply_parser()
      local line = "250-" .. string.rep("y", 60000) .. "\r\n"
      local ok, kind
      local fed = 0
      for _ = 1, 1000 do
        ok, kind = p:feed(line)
        if not ok then break end
        fed = fed + #line
      end
      assert.is_nil(ok)
      assert.equal("protocol", kind)
      assert.is_true(fed <= 262144)
    end)

    it("honours a custom total limit", function()
      local p = core.reply_parser(100, 10, 20)
      assert.is_nil((p:feed("250-0123456789\r\n250 x\r\n")))
      p = core.reply_parser(100, 10, 30)
      assert.equal(2, #assert(feed_all("250-0123456789\r\n250 x\r\n", p))[1].lines)
    end)

    it("does not buffer more than 256 KiB after a complete reply while next() is not called", function()
      local p = core.reply_parser()
      assert.is_true(p:feed("250 first\r\n"))
      local chunk = string.rep("250 pipelined\r\n", 1000)
      local ok, kind, msg
      for _ = 1, 100 do
        ok, kind, msg = p:feed(chunk)
        if not ok then break end
      end
      assert.is_nil(ok)
      assert.equal("protocol", kind)
      assert.truthy(msg:find("after a complete reply", 1, true), msg)
      assert.is_true(p:buffered() <= 262144 + #"250 first\r\n")
    end)

    it("still returns many pipelined replies when next() is called between feeds", function()
      local p = core.reply_parser()
      local chunk = string.rep("250 2.1.5 ok\r\n", 1000)
      local count = 0
      for _ = 1, 50 do
        local replies = assert(feed_all(chunk, p))
        count = count + #replies
      end
      assert.equal(50000, count)
    end)
  end)

  describe("reply codes and NUL (RFC 5321 4.2)", function()
    local bad = {
      { "a second digit of 6", "260 ok\r\n" },
      { "a second digit of 7", "470 ok\r\n" },
      { "a second digit of 8", "580 ok\r\n" },
      { "a second digit of 9", "299\r\n" },
      { "a NUL in the text", "250 a\0b\r\n" },
      { "a NUL at the end of the line", "250 ok\0\r\n" },
      { "a NUL in a continuation line", "250-mx\r\n250-X\0EVIL\r\n250 8BITMIME\r\n" },
      { "a NUL in the code", "2\0" .. "0 ok\r\n" },
    }
    for _, row in ipairs(bad) do
      it("rejects " .. row[1] .. " with kind protocol", function()
        local r, kind, msg = feed_all(row[2])
        assert.is_nil(r)
        assert.equal("protocol", kind)
        assert.truthy(msg:find("malformed reply", 1, true), msg)
      end)
    end

    it("accepts second digits 0 to 5 and 8-bit text", function()
      for d = 0, 5 do
        local r = assert(feed_all("2" .. d .. "1 ok\255\r\n"))
        assert.equal(201 + 10 * d, r[1].code)
        assert.equal("ok\255", r[1].lines[1])
      end
    end)

    it("reports a NUL in a pipelined reply on the next call, not with the good one", function()
      local p = core.reply_parser()
      assert.is_true(p:feed("250 ok\r\n550 n\0pe\r\n"))
      assert.equal(250, p:next().code)
      local r, kind = p:next()
      assert.is_nil(r)
      assert.equal("protocol", kind)
    end)

    it("raises kind protocol, not permanent, in the client for a 560 reply to MAIL", function()
      local smtp = require "smtp"
      local scripted = require "helpers.scripted"
      local server = scripted.start("S: 220 mx ESMTP\nC: EHLO client.example\nS: 250 mx\n" ..
        "C: MAIL FROM:<a@example.org>\nS: 560 5.7.1 no\n")
      local c
      local ok, err = pcall(function()
        c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "client.example" }
        c:helo()
        c:mail("a@example.org")
      end)
      local closed = c and c:closed()
      if c then c:close() end
      server:result()
      assert.is_false(ok)
      assert.is_true(smtp.Error.is(err), tostring(err))
      assert.equal("protocol", err.kind, tostring(err))
      assert.is_true(closed)
    end)

    it("still takes an EHLO keyword with 8-bit bytes as an unknown extension", function()
      local smtp = require "smtp"
      local scripted = require "helpers.scripted"
      local server = scripted.start("S: 220 mx ESMTP\nC: EHLO client.example\n" ..
        "S: 250-mx\nS: 250-XEVIL\\xff\nS: 250 8BITMIME\nC: QUIT\nS: 221 bye\n")
      local ext
      local ok, err = pcall(function()
        local c = smtp.connect { host = "127.0.0.1", port = server.port, timeout = 5, local_name = "client.example" }
        c:helo()
        ext = c:extensions()
        c:quit()
      end)
      local sok, serr = server:result()
      assert.is_true(ok, tostring(err))
      assert.is_true(sok, serr)
      assert.is_truthy(ext["8BITMIME"])
    end)
  end)

  describe("L14: NUL bytes in a DATA or BDAT body", function()
    local TERM = "\r\n.\r\n"

    it("dotstuffer:encode refuses a NUL in DATA and BDAT modes, finish then refuses too", function()
      for _, stuff in ipairs({ true, false }) do
        local d = core.dotstuffer(stuff)
        assert.equal("ok\r\n", d:encode("ok\n"))
        local out, kind, msg = d:encode("a\0b")
        assert.is_nil(out)
        assert.equal("usage", kind)
        assert.truthy(msg:find("message contains a NUL byte", 1, true), msg)
        assert.is_nil((d:encode("more")))
        local tail, fkind = d:finish()
        assert.is_nil(tail)
        assert.equal("usage", fkind)
      end
    end)

    it("dotstuffer passes NUL untouched in binary mode", function()
      local d = core.dotstuffer(false, true)
      assert.equal("a\0b\n", d:encode("a\0b\n"))
      assert.equal("", d:finish())
    end)

    it("send_data fails before the terminator and closes the connection", function()
      local c, peer = pair()
      local d = core.dotstuffer()
      assert.equal(7, c:send_data(d, "hello\r\n"))
      local n, kind, msg, where = c:send_data(d, "x\0y\r\n", true)
      assert.is_nil(n)
      assert.equal("usage", kind)
      assert.truthy(msg:find("message contains a NUL byte", 1, true), msg)
      assert.equal("source", where)
      assert.is_true(c:is_closed())
      local got = read_all(peer)
      peer:close()
      assert.equal("hello\r\n", got)
    end)

    it("send_data with BDAT fails before BDAT LAST", function()
      local c, peer = pair()
      local d = core.dotstuffer(false)
      local n, kind = c:send_data(d, "a\0", true, true, "MAIL FROM:<a@b>\r\n")
      assert.is_nil(n)
      assert.equal("usage", kind)
      local got = read_all(peer)
      peer:close()
      assert.equal("", got)
    end)

    local function send_body_case(parts, mode)
      local c, peer = pair()
      local n, kind, msg, where = c:send_body(parts, mode, "DATA\r\n", "QUIT\r\n")
      local closed = c:is_closed()
      c:close()
      local got = read_all(peer)
      peer:close()
      return n, kind, msg, where, closed, got
    end

    for _, mode in ipairs({ "data", "bdat" }) do
      it("send_body (" .. mode .. ") fails on a NUL in a string part, with where = source", function()
        local n, kind, msg, where, closed, got = send_body_case({ "Subject: x\r\n\r\n", "a\0b\r\n" }, mode)
        assert.is_nil(n)
        assert.equal("usage", kind)
        assert.truthy(msg:find("message contains a NUL byte", 1, true), msg)
        assert.equal("source", where)
        assert.is_true(closed)
        assert.is_nil(got:find(TERM, 1, true))
        assert.is_nil(got:find("LAST", 1, true))
        assert.is_nil(got:find("QUIT", 1, true))
        assert.is_nil(got:find("\0", 1, true))
      end)

      it("send_body (" .. mode .. ") fails on a NUL deep in a file part", function()
        local f = assert(io.tmpfile())
        f:write(string.rep("line of text\r\n", 20000), "tail\0\r\n")
        f:seek("set", 0)
        local n, kind, _, where, closed, got = send_body_case({ "Subject: x\r\n\r\n", { file = f } }, mode)
        f:close()
        assert.is_nil(n)
        assert.equal("usage", kind)
        assert.equal("source", where)
        assert.is_true(closed)
        assert.is_nil(got:find(TERM, 1, true))
        assert.is_nil(got:find("LAST", 1, true))
        assert.is_nil(got:find("\0", 1, true))
      end)
    end

    it("send_body (binary) still carries NUL bytes", function()
      local n, kind, msg, _, _, got = send_body_case({ "a\0b\r\n" }, "binary")
      assert.equal(5, n, tostring(kind) .. ": " .. tostring(msg))
      assert.equal("DATA\r\nBDAT 5 LAST\r\na\0b\r\nQUIT\r\n", got)
    end)

    it("send_body (data) without NUL is terminated as before", function()
      local n, _, _, _, _, got = send_body_case({ "a\r\n" }, "data")
      assert.equal(3, n)
      assert.equal("DATA\r\na\r\n.\r\nQUIT\r\n", got)
    end)
  end)
end)
