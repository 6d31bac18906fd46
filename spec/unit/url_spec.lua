-- Connection URLs (lua/smtp/url.lua): smtp://, smtps://, lmtp:// read as
-- curl and lettre read them, explicit options winning, and every refusal
-- a kind 'usage' error that never quotes the password.
local url = require "smtp.url"
local smtp = require "smtp"

local SECRET = "s3cr#t-pw"
local SECRET_URL = "s3cr%23t-pw" -- as written in a URL

local function refused(s, where)
  local ok, err = pcall(url.parse, s, where)
  assert.is_false(ok, "accepted: " .. tostring(s))
  assert.is_true(smtp.Error.is(err), tostring(err))
  assert.equal("usage", err.kind)
  return err
end

describe("smtp.url", function()
  describe("parse", function()
    local good = {
      { "smtp://mail.example.org", { host = "mail.example.org", port = 25, tls = {}, tls_required = true } },
      { "smtp://mail.example.org:587", { host = "mail.example.org", port = 587, tls = {}, tls_required = true } },
      { "SMTP://Mail.Example.org:587/", { host = "Mail.Example.org", port = 587, tls = {}, tls_required = true } },
      { "smtp://h:587?tls=required", { host = "h", port = 587, tls = {}, tls_required = true } },
      { "smtp://h?tls=opportunistic", { host = "h", port = 25, tls = {}, tls_required = false } },
      { "smtp://h:2525?tls=none", { host = "h", port = 2525 } },
      { "smtps://h", { host = "h", port = 465, tls_mode = "implicit", tls = {}, tls_required = true } },
      { "smtps://alice:pw@h:4650", { host = "h", port = 4650, tls_mode = "implicit", tls = {},
        tls_required = true, user = "alice", password = "pw" } },
      -- Percent-decoding; the last '@' ends the user information.
      { "smtps://a%40b.example:p%3Aw%2F%3F%23%25@h", { host = "h", port = 465, tls_mode = "implicit", tls = {},
        tls_required = true, user = "a@b.example", password = "p:w/?#%" } },
      { "smtps://u:p@ss@h", { host = "h", port = 465, tls_mode = "implicit", tls = {},
        tls_required = true, user = "u", password = "p@ss" } },
      { "smtp://alice@h?tls=none", { host = "h", port = 25, user = "alice" } },
      { "smtp://[::1]:2525?tls=none", { host = "::1", port = 2525 } },
      { "smtp://[2001:db8::1]", { host = "2001:db8::1", port = 25, tls = {}, tls_required = true } },
      { "smtp://127.0.0.1:25/client.example", { host = "127.0.0.1", port = 25, tls = {}, tls_required = true,
        local_name = "client.example" } },
      { "lmtp://127.0.0.1", { host = "127.0.0.1", port = 24, protocol = "lmtp" } },
      { "lmtp://127.0.0.1:2424?tls=required", { host = "127.0.0.1", port = 2424, protocol = "lmtp", tls = {},
        tls_required = true } },
      { "lmtp:///var/run/dovecot/lmtp", { host = "/var/run/dovecot/lmtp", protocol = "lmtp" } },
      { "lmtp://%2Frun%2Flmtp", { host = "/run/lmtp", protocol = "lmtp" } },
    }
    for _, case in ipairs(good) do
      it("reads " .. case[1], function()
        assert.same(case[2], url.parse(case[1]))
      end)
    end

    local bad = {
      { "", "non%-empty" },
      { "mail.example.org:25", "must start with" },
      { "http://h", "unknown scheme 'http'" },
      { "smtp://", "host is missing" },
      { "smtp://:25", "host is missing" },
      { "smtp://u:" .. SECRET .. "@", "fragment" }, -- the '#' of the password, unencoded
      { "smtp://h#frag", "fragment" },
      { "smtp://h:0", "port" },
      { "smtp://h:65536", "port" },
      { "smtp://h:25x", "port" },
      { "smtp://h:-1", "port" },
      { "smtp://::1:25", "brackets" },
      { "smtp://[::1", "IPv6" },
      { "smtp://[example]:25", "IPv6" },
      { "smtp://[::1]x", "after the host" },
      { "smtp://h\r\nRCPT TO:<x>", "control" },
      { "smtp://h /x", "space" },
      { "smtp://h%0d%0a", "control" },
      { "smtp://h%zz", "percent" },
      { "smtp://h%4", "percent" },
      { "smtp://u%00:pw@h", "control" },
      { "smtp://u:p%0Aw@h", "control" },
      { "smtp://u:p%g1@h", "percent" },
      { "smtp://:pw@h", "empty user" },
      { "smtp://u:@h", "empty password" },
      { "smtp://u:pa/ss@h", "percent%-encode" },
      { "smtp://u:pa?ss@h", "percent%-encode" },
      { "smtp://h?tls=maybe", "tls must be" },
      { "smtp://h?tls", "tls must be" },
      { "smtp://h?tls=none&tls=none", "twice" },
      { "smtp://h?auth=plain", "unknown query key 'auth'" },
      { "smtps://h?tls=opportunistic", "contradicts" },
      { "smtps://h?tls=none", "contradicts" },
      { "smtp:///run/socket", "host is missing" },
      { "smtp://%2Frun%2Fsocket", "needs lmtp" },
      { "lmtp://", "needs a host" },
      { "lmtp://%2Frun%2Flmtp:24", "no port" },
      { "lmtp://h/x", "no path" },
      { "smtp://h/a/b", "single EHLO name" },
      { "smtp://h%2Fx", "slash" },
      { ("smtp://" .. ("a"):rep(5000)), "longer" },
    }
    for _, case in ipairs(bad) do
      it("refuses " .. case[1]:sub(1, 60):gsub("[\r\n]", "?") .. " as usage", function()
        local err = refused(case[1])
        assert.truthy(err.message:find(case[2]), err.message)
      end)
    end

    it("refuses a non-string", function()
      refused(42)
      refused(nil)
    end)

    it("never quotes the user name or password in a refusal", function()
      local user = "someuser"
      for _, s in ipairs({
        "smtp://" .. user .. ":" .. SECRET .. "@h:99999",
        "smtp://" .. user .. ":" .. SECRET .. "@h?tls=bad",
        "smtp://" .. user .. ":" .. SECRET .. "@h?" .. SECRET .. "=1",
        "smtp://" .. user .. ":" .. SECRET .. "/@h",
        "smtp://" .. user .. ":" .. SECRET:gsub("#", "%%") .. "@h",
        "smtp://" .. user .. ":" .. SECRET:gsub("#", "") .. "/x", -- no '@': read as host:port
        "smtp://" .. user .. ":" .. SECRET:gsub("#", "") .. "@[::1",
        "ftp://" .. user .. ":" .. SECRET .. "@h",
        user .. ":" .. SECRET .. "@h",
        "smtp://" .. user .. ":" .. SECRET:gsub("#", "") .. "@h\n",
      }) do
        local err = refused(s, "smtp.connect: ")
        for _, text in ipairs({ err.message, tostring(err) }) do
          assert.is_nil(text:find(SECRET, 1, true), text)
          assert.is_nil(text:find(SECRET:gsub("#", ""), 1, true), text)
          assert.is_nil(text:find(user, 1, true), text)
        end
        assert.truthy(err.message:find("^smtp.connect: url: "), err.message)
      end
    end)
  end)

  describe("apply", function()
    it("returns options without a url untouched", function()
      local o = { host = "h" }
      assert.equal(o, url.apply(o))
    end)

    it("lets explicit options win over the URL", function()
      local cfg = { ca_file = "/ca.pem" }
      local o = url.apply({ url = "smtps://u:p@h:465", port = 2526, tls = cfg, timeout = 5 })
      assert.equal(2526, o.port)
      assert.equal(cfg, o.tls)
      assert.equal("h", o.host)
      assert.equal("implicit", o.tls_mode)
      assert.equal(5, o.timeout)
      assert.equal("u", o.user)
      assert.equal("p", o.password)
      assert.is_nil(o.url)
      o = url.apply({ url = "smtp://h?tls=opportunistic", tls_required = true, host = "other" })
      assert.is_true(o.tls_required)
      assert.equal("other", o.host)
    end)

    it("takes credentials from one place only", function()
      local o = url.apply({ url = "smtp://u:p@h", user = "explicit" })
      assert.equal("explicit", o.user)
      assert.is_nil(o.password)
      assert.is_nil(o._url_creds)
      o = url.apply({ url = "smtp://u:p@h", token = "tok" })
      assert.is_nil(o.user)
      assert.is_nil(o.password)
      o = url.apply({ url = "smtp://u:p@h" })
      assert.same({ user = "u", password = "p" }, o._url_creds)
    end)

    it("drops the URL's TLS for an explicit tls = false or another tls_mode", function()
      local o = url.apply({ url = "smtp://h", tls = false })
      assert.is_false(o.tls)
      assert.is_nil(o.tls_required)
      o = url.apply({ url = "smtps://h", tls_mode = "none" })
      assert.equal("none", o.tls_mode)
      assert.is_nil(o.tls)
      -- tls_mode = "none" is what smtp:// means already: STARTTLS stays.
      o = url.apply({ url = "smtp://h", tls_mode = "none" })
      assert.same({}, o.tls)
      assert.is_true(o.tls_required)
    end)
  end)

  describe("in the public functions", function()
    it("smtp.connect, smtp.send, smtp.verify, smtp.lmtp_connect and smtp.pool refuse a malformed url as usage", function()
      local calls = {
        function() return smtp.connect { url = "smtp://u:" .. SECRET_URL .. "@h:0" } end,
        function() return smtp.send { url = "smtp://u:" .. SECRET_URL .. "@h:0", raw = "x" } end,
        function() return smtp.verify { url = "smtp://u:" .. SECRET_URL .. "@h:0" } end,
        function() return smtp.lmtp_connect { url = "lmtp://u:" .. SECRET_URL .. "@h:0" } end,
        function() return smtp.pool { servers = { { url = "smtps://u:" .. SECRET_URL .. "@h:0" } } } end,
        function() return smtp.pool { url = "smtps://u:" .. SECRET_URL .. "@h:0", servers = { {} } } end,
      }
      for i, f in ipairs(calls) do
        local ok, err = pcall(f)
        assert.is_false(ok, i)
        assert.equal("usage", err.kind, tostring(err))
        assert.truthy(err.message:find("port must be", 1, true), err.message)
        assert.is_nil(tostring(err):find("s3cr", 1, true))
      end
    end)

    it("smtp.pool labels each server by the URL's host and port, explicit port first", function()
      local pool = smtp.pool { servers = {
        { url = "smtps://u:" .. SECRET_URL .. "@relay1.example" },
        { url = "smtp://[::1]:2525?tls=none" },
        { url = "lmtp://relay2.example", port = 2424 },
      } }
      assert.equal("relay1.example:465", pool.servers[1].label)
      assert.equal("[::1]:2525", pool.servers[2].label)
      assert.equal("relay2.example:2424", pool.servers[3].label)
      assert.equal("lmtp", pool.servers[3].opts.protocol)
      assert.equal("u", pool.servers[1].opts.user)
      assert.is_nil(pool.servers[1].opts.url)
      assert.is_nil(tostring(pool):find("s3cr", 1, true))
    end)
  end)
end)
