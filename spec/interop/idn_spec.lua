-- Internationalised domains against real components (issue 25 item 3):
-- a private Postfix without SMTPUTF8 (nor 8BITMIME) delivers to
-- user@bücher.example as its A-label mailbox, and the Maildir file is read
-- back; a TLS peer whose certificate names only the A-label is verified
-- through a U-label tls_peer; a U-label connect host is resolved as its
-- A-label by a stub DNS server in a network namespace of its own, and by
-- a SOCKS5 proxy's remote DNS (ATYP 3).
local smtp = require "smtp"
local servers = require "helpers.servers"
local P = require "helpers.proc"
local V = require "helpers.luaver"

local ALABEL = "xn--bcher-kva.example"

describe("IDN delivery through Postfix #interop", function()
  local pf, map_dir

  setup(function()
    -- Mailboxes at the A-label domain, beside the helper's example.test
    -- ones; Postfix offers neither SMTPUTF8 nor 8BITMIME.
    map_dir = P.tempdir("idn-map")
    P.write_file(map_dir .. "/vmailbox", ("alice@%s %s/alice/\nuser@%s %s/idnuser/\n")
      :format(servers.DOMAIN, servers.DOMAIN, ALABEL, servers.DOMAIN), "0644")
    -- Postfix re-reads a map younger than a second (helpers/servers.lua).
    P.run("chmod 0755 " .. P.q(map_dir) .. " && touch -d 2000-01-01 " .. P.q(map_dir .. "/vmailbox"))
    pf = servers.postfix { main = {
      smtputf8_enable = "no",
      smtpd_discard_ehlo_keywords = "8bitmime",
      virtual_mailbox_domains = servers.DOMAIN .. ", " .. ALABEL,
      virtual_mailbox_maps = "texthash:" .. map_dir .. "/vmailbox",
    } }
  end)

  teardown(function()
    if pf then pf:stop() end
  end)

  it("delivers to user@bücher.example as user@" .. ALABEL .. " and the stored envelope says so", function()
    local client = smtp.connect { host = "127.0.0.1", port = pf.ports.plain, timeout = 10,
      local_name = "mäil.bücher.example" }
    client:helo()
    local ext = client:extensions()
    assert.is_nil(ext.SMTPUTF8)
    assert.is_nil(ext["8BITMIME"])
    local raw = "From: sender@example.org\r\nTo: user@example.org\r\nSubject: idn delivery\r\n\r\nhello\r\n"
    local report = client:sendmail(raw, { from = "sender@Bücher.example", to = { "user@bücher.example" } })
    assert.same({ "user@bücher.example" }, report.accepted)
    client:quit()
    local list = assert(pf:wait_messages(1, 10, "idnuser"))
    local m = list[1]
    assert.equal("sender@" .. ALABEL, m.mail_from)
    assert.equal("user@" .. ALABEL, m.rcpt_to)
    assert.truthy(m.added:find("X-Original-To: user@" .. ALABEL, 1, true), m.added)
    -- Postfix's Received line records the EHLO name as sent: A-labels.
    assert.truthy(m.added:find("from xn--mil-qla.xn--bcher-kva.example", 1, true), m.added)
    assert.equal(raw, m.data)
  end)

  it("refuses a non-ASCII local part (kind usage) and Postfix logs no MAIL", function()
    local client = smtp.connect { host = "127.0.0.1", port = pf.ports.plain, timeout = 10 }
    local ok, err = pcall(client.sendmail, client, "Subject: x\r\n\r\nx\r\n",
      { from = "sender@example.org", to = { "jürgen@bücher.example" } })
    client:close()
    assert.is_false(ok)
    assert.is_true(smtp.Error.is(err), tostring(err))
    assert.equal("usage", err.kind)
    assert.is_nil(pf:log():find("jürgen", 1, true))
  end)
end)

describe("IDN TLS peer name #interop #tls", function()
  it("checks the certificate against the A-label of a U-label tls_peer or server_name", function()
    local certs = require "helpers.certs"
    local c = certs.make()
    local dir = P.tempdir("idn-cert")
    -- A leaf for the A-label only, signed by the suite's CA.
    P.write_file(dir .. "/ext.cnf", "subjectAltName = DNS:" .. ALABEL .. "\nextendedKeyUsage = serverAuth\n")
    P.run(("cd %s && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout idn.key " ..
      "-subj /CN=%s -out idn.csr 2>/dev/null && openssl x509 -req -in idn.csr -CA %s -CAkey %s " ..
      "-CAcreateserial -days 2 -extfile ext.cnf -out idn.pem 2>/dev/null")
      :format(P.q(dir), ALABEL, P.q(c.ca_cert), P.q(c.ca_key)))
    local srv = servers.aiosmtpd { implicit_tls = true, tls = { cert = dir .. "/idn.pem", key = dir .. "/idn.key" } }
    local ok, err = pcall(function()
      local client = smtp.connect { host = "127.0.0.1", port = srv.port, timeout = 10, tls_mode = "implicit",
        tls = { ca_file = c.ca_cert }, tls_peer = "Bücher.example" }
      assert.is_true(client:tls_info().peer_verified)
      client:quit()
      -- The same certificate does not pass for another name.
      local bad_ok, bad = pcall(smtp.connect, { host = "127.0.0.1", port = srv.port, timeout = 10,
        tls_mode = "implicit", tls = { ca_file = c.ca_cert }, tls_peer = "bucher.example" })
      assert.is_false(bad_ok)
      assert.equal("tls", bad.kind)
      -- A U-label server_name in a table of options or a config object.
      for _, tls in ipairs({ { ca_file = c.ca_cert, server_name = "Bücher.example" },
                              smtp.tls_config { ca_file = c.ca_cert, server_name = "Bücher.example" } }) do
        client = smtp.connect { host = "127.0.0.1", port = srv.port, timeout = 10, tls_mode = "implicit", tls = tls }
        assert.is_true(client:tls_info().peer_verified)
        client:quit()
      end
    end)
    srv:stop()
    assert(ok, err)
  end)
end)

describe("IDN connect host in DNS #interop", function()
  local function netns_ok()
    return V.execute("unshare --net --mount true") and V.execute("command -v ip")
  end

  it("resolves a U-label host through its A-label", function()
    if not netns_ok() then
      pending("needs root for a network namespace (unshare --net --mount) and iproute2")
      return
    end
    local dir = P.tempdir("idn-netns")
    P.write_file(dir .. "/resolv.conf", "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    local inner = ("ip link set lo up && mount --bind %s /etc/resolv.conf && exec %s spec/helpers/idn_dns_probe.lua")
      :format(P.q(dir .. "/resolv.conf"), V.interpreter)
    local out = P.run(("timeout 60 unshare --net --mount sh -c %s 2>&1"):format(P.q(inner)))
    assert.truthy(out:find("RESULT ok", 1, true), out)
    -- The stub saw the A-label query, never the UTF-8 bytes.
    assert.truthy(out:find("QUERY " .. "xn--bcher-kva.test", 1, true), out)
    assert.is_nil(out:find("QUERY b\239\191\189", 1, true), out)
  end)
end)

describe("IDN connect host through a SOCKS5 proxy #interop", function()
  it("sends the A-label as the ATYP 3 name (Dante resolves only that)", function()
    local proxies = require "helpers.proxies"
    if not proxies.namespaces() then
      pending("needs mount namespaces (unshare -m) for Dante's private /etc/hosts")
      return
    end
    local dante = proxies.dante { hosts = { ["xn--bcher-kva.test"] = "127.0.0.1" } }
    local server = servers.aiosmtpd {}
    local ok, err = pcall(function()
      local client = smtp.connect { host = "bücher.test", port = server.port, timeout = 5,
        proxy = { type = "socks5", host = dante.host, port = dante.port } }
      client:sendmail("Subject: socks idn\r\n\r\nx\r\n", { from = "a@example.org", to = { "b@example.org" } })
      client:quit()
      assert(server:wait_messages(1))
    end)
    local log = dante:log()
    server:stop()
    dante:stop()
    assert(ok, tostring(err) .. "\n" .. log)
  end)
end)
