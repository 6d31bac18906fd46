-- make demo: starts a private SMTP server on loopback (Python aiosmtpd with
-- STARTTLS and AUTH, certificates made for this run), sends a real message
-- through lua-smtp with the protocol trace on (credentials masked), and
-- prints what the server received. Stops the server in every case.
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = (os.getenv("SMTP_BUILD") or "build") .. "/?.so;" .. package.cpath

local smtp = require "smtp"
local servers = require "helpers.servers"
local certs = require "helpers.certs"

local pki = certs.make()
local server = servers.aiosmtpd {
  tls = true, auth = { { user = "demo", password = "demo-password" } }, auth_require_tls = true,
}

local function build_message()
  local ok, _ = pcall(require, "smtp.message")
  if ok and smtp.message then
    return smtp.message {
      from = "Demo Sender <sender@example.org>",
      to = { "Rückmeldung <recipient@example.org>" },
      subject = "lua-smtp demo: Grüße from make demo",
      text = "Hello!\n\nThis message went through lua-smtp over STARTTLS with AUTH.\n",
      html = "<p>Hello!</p><p>This message went through <b>lua-smtp</b>.</p>",
      attachments = { { data = "col1,col2\n1,2\n", filename = "report.csv", content_type = "text/csv" } },
    }
  end
  return "From: Demo Sender <sender@example.org>\r\nTo: recipient@example.org\r\n" ..
    "Subject: lua-smtp demo\r\n\r\nHello!\r\nThis message went through lua-smtp over STARTTLS with AUTH.\r\n"
end

local ok, err = pcall(function()
  print("== lua-smtp " .. smtp.VERSION .. " -> aiosmtpd on " .. server.host .. ":" .. server.port)
  print("== protocol trace (credentials masked)")
  local client = smtp.connect { host = "localhost", port = server.port, timeout = 10, debug = true }
  client:authenticate {
    tls = { ca_file = pki.ca_cert }, tls_required = true,
    user = "demo", password = "demo-password",
  }
  local info = client:tls_info()
  local report = client:sendmail(build_message())
  client:quit()
  print(("== sent over %s (%s), server said %d %s"):format(info.version, info.cipher,
    report.reply.code, report.reply.text))
  local got = assert(server:wait_messages(1))[1]
  print("== the server received, from " .. got.mail_from .. " to " .. table.concat(got.rcpt_tos, ", ")
    .. " (TLS: " .. tostring(got.tls) .. ", AUTH: " .. tostring(got.auth) .. "):")
  io.write(got.data)
end)
server:stop()
if not ok then
  io.stderr:write("demo failed: ", tostring(err), "\n")
  os.exit(1)
end
