-- Postfix's smtp-sink (PIPELINING) takes 1,000 messages over one
-- connection, with sendmail and with sendmany.
local smtp = require "smtp"
local servers = require "helpers.servers"

describe("smtp-sink #interop", function()
  local sink

  setup(function() sink = servers.smtp_sink {} end)
  teardown(function() if sink then sink:stop() end end)

  local msg = "From: a@example.org\r\nTo: b@example.org\r\nSubject: load\r\n\r\n" ..
    string.rep("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 15)

  it("accepts 1,000 messages over one connection with sendmail", function()
    local start = sink:count()
    local client = smtp.connect { host = sink.host, port = sink.port, timeout = 10 }
    client:helo()
    assert.is_true(client:extensions().PIPELINING)
    for _ = 1, 1000 do
      local r = client:sendmail(msg)
      assert(r.reply.code == 250, r.reply.text)
    end
    client:quit()
    assert.equal(start + 1000, sink:wait_count(start + 1000))
  end)

  it("accepts 1,000 messages over one connection with sendmany", function()
    local start = sink:count()
    local client = smtp.connect { host = sink.host, port = sink.port, timeout = 10 }
    local msgs = {}
    for i = 1, 1000 do msgs[i] = msg end
    local results = client:sendmany(msgs)
    client:quit()
    for i = 1, 1000 do assert(results[i].reply and results[i].reply.code == 250, tostring(results[i])) end
    assert.equal(start + 1000, sink:wait_count(start + 1000))
  end)
end)
