-- lua-smtp as a benchmark client (bench/run.lua drives it): one mode per
-- scenario of issue 6. Prints "ok <messages> <seconds>" on success (the
-- seconds are measured inside, from before connect to after QUIT), then
-- " tls=<version> cipher=<cipher>" when the connection used TLS.
--   luasmtp.lua loop|many|conn <host> <port> <count> <msgfile> [tls]
--   luasmtp.lua file <host> <port> 1 <msgfile> [tls]     (file handle source)
--   luasmtp.lua attach <host> <port> 1 <binfile> [tls]   (smtp.message, base64)
--   luasmtp.lua pool <host> <port,port,...> <count> <msgfile>  (smtp.pool)
--   luasmtp.lua starttls <host> <port> <count> <msgfile>  (issue 16: a new
--     connection per message: EHLO, STARTTLS, EHLO, MAIL, RCPT, DATA, QUIT;
--     one smtp.tls_config for all, verify = "none"; BENCH_SESSION_CACHE=false
--     builds it with session_cache = false). Adds " resumed=<n> tls=<version>
--     cipher=<cipher>" to the ok line; " standin=1" when this build does not
--     know session_cache yet and a fresh tls_config per connection stands in.
local smtp = require "smtp"
local core = require "smtp.core"

local mode, host, port, count, path, tls = ...
local ports = port
port, count = tonumber(port), tonumber(count)
-- BENCH_RCPT overrides the recipient (Postfix accepts only its users);
-- BENCH_CHUNKING=false turns BDAT off.
local FROM, TO = "bench@example.test", { os.getenv("BENCH_RCPT") or "sink@example.test" }
local opts = { from = FROM, to = TO, chunking = os.getenv("BENCH_CHUNKING") ~= "false" }

local tls_seen -- "tls=<version> cipher=<cipher>" of the last TLS connection

local function connect()
  local c
  if tls == "tls" then
    c = smtp.connect { host = host, port = port, tls_mode = "implicit", tls = { verify = "none" } }
    local info = c:tls_info()
    tls_seen = ("tls=%s cipher=%s"):format(info.version, info.cipher)
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
elseif mode == "starttls" then
  local msg = read_all(path)
  local opts_tls = { verify = "none" }
  local cfg, standin
  if os.getenv("BENCH_SESSION_CACHE") == "false" then
    opts_tls.session_cache = false
    local ok, err = pcall(smtp.tls_config, opts_tls)
    if ok then
      cfg = err
    elseif tostring(err.message or err):find("unknown TLS option 'session_cache'", 1, true) then
      -- Before session resumption: every config starts empty, so a fresh
      -- one per connection cannot resume either.
      opts_tls.session_cache, standin = nil, true
    else
      error(err, 0)
    end
  else
    cfg = smtp.tls_config(opts_tls)
  end
  local resumed, version, cipher = 0, "?", "?"
  for _ = 1, count do
    local c = smtp.connect { host = host, port = port }
    c:helo("bench.example.test")
    c:starttls(cfg or smtp.tls_config(opts_tls))
    c:helo("bench.example.test")
    check(c:sendmail(msg, opts))
    local info = c:tls_info()
    if info.resumed then resumed = resumed + 1 end
    version, cipher = info.version, info.cipher
    c:quit()
    sent = sent + 1
  end
  io.write(("ok %d %.4f resumed=%d tls=%s cipher=%s%s\n"):format(sent, core.now() - t0, resumed,
    version, cipher, standin and " standin=1" or ""))
  os.exit(0)
else
  error("unknown mode " .. tostring(mode))
end
io.write(("ok %d %.4f%s\n"):format(sent, core.now() - t0, tls_seen and " " .. tls_seen or ""))
