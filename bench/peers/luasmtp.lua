-- lua-smtp as a benchmark client (bench/run.lua drives it): one mode per
-- scenario of issue 6. Prints "ok <messages> <seconds>" on success (the
-- seconds are measured inside, from before connect to after QUIT).
--   luasmtp.lua loop|many|conn <host> <port> <count> <msgfile> [tls]
--   luasmtp.lua file <host> <port> 1 <msgfile> [tls]     (file handle source)
--   luasmtp.lua attach <host> <port> 1 <binfile> [tls]   (smtp.message, base64)
--   luasmtp.lua pool <host> <port,port,...> <count> <msgfile>  (smtp.pool)
local smtp = require "smtp"
local core = require "smtp.core"

local mode, host, port, count, path, tls = ...
local ports = port
port, count = tonumber(port), tonumber(count)
-- BENCH_RCPT overrides the recipient (Postfix accepts only its users);
-- BENCH_CHUNKING=false turns BDAT off.
local FROM, TO = "bench@example.test", { os.getenv("BENCH_RCPT") or "sink@example.test" }
local opts = { from = FROM, to = TO, chunking = os.getenv("BENCH_CHUNKING") ~= "false" }

local function connect()
  local c
  if tls == "tls" then
    c = smtp.connect { host = host, port = port, tls_mode = "implicit", tls = { verify = "none" } }
  else
    c = smtp.connect { host = host, port = port }
  end
  c:helo("bench.example.test")
  return c
end

local function read_all(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function check(r)
  if type(r) ~= "table" or not r.reply or r.reply.code ~= 250 then
    error("message refused: " .. tostring(r), 0)
  end
end

local t0 = core.now()
local sent = 0
if mode == "loop" then
  local msg = read_all(path)
  local c = connect()
  for _ = 1, count do check(c:sendmail(msg, opts)); sent = sent + 1 end
  c:quit()
elseif mode == "many" then
  local msg = read_all(path)
  local list = {}
  for i = 1, count do list[i] = msg end
  local c = connect()
  for _, r in ipairs(c:sendmany(list, opts)) do check(r); sent = sent + 1 end
  c:quit()
elseif mode == "conn" then
  local msg = read_all(path)
  for _ = 1, count do
    local c = connect()
    check(c:sendmail(msg, opts))
    c:quit()
    sent = sent + 1
  end
elseif mode == "file" then
  local c = connect()
  local f = assert(io.open(path, "rb"))
  check(c:sendmail(f, opts))
  f:close()
  c:quit()
  sent = 1
elseif mode == "attach" then
  local message = smtp.message or require("smtp.message").new
  local m = message {
    from = FROM, to = TO[1], subject = "attachment",
    text = "See the attachment.\n",
    attachments = { { path = path, content_type = "application/octet-stream" } },
  }
  local c = connect()
  check(c:sendmail(m, opts))
  c:quit()
  sent = 1
elseif mode == "pool" then
  local msg = read_all(path)
  local list = {}
  for p in ports:gmatch("%d+") do list[#list + 1] = { host = host, port = tonumber(p) } end
  local pool = smtp.pool { servers = list, local_name = "bench.example.test", max_messages = 1000000 }
  for _ = 1, count do check(pool:send(msg, opts)); sent = sent + 1 end
  pool:close()
else
  error("unknown mode " .. tostring(mode))
end
io.write(("ok %d %.4f\n"):format(sent, core.now() - t0))
