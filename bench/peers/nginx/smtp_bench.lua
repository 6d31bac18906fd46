-- nginx request handler for bench S11 (issue 27): lua-smtp over a cosocket
-- with each TLS engine, timed by the bench from outside (one HTTP request
-- per run). Query: engine ("lua-smtp" | "host"), mode ("bulk": one message
-- from a file over implicit TLS; "handshakes": n fresh implicit-TLS
-- connections, each with EHLO and QUIT, no session resumption), port, n,
-- file. Answers "ok <count>" or "error <message>".
local smtp = require "smtp"
local ngx = ngx -- luacheck: ignore (the nginx global)

local M = {}

-- One config per worker and engine; no resumption in the handshake rows.
local configs = {}
local function tls_for(engine, cache)
  if engine == "host" then return { verify = "none" } end
  local key = tostring(cache)
  if not configs[key] then configs[key] = smtp.tls_config { verify = "none", session_cache = cache } end
  return configs[key]
end

local function connect(args, cache)
  return smtp.connect { host = "127.0.0.1", port = tonumber(args.port), tls_mode = "implicit",
    tls = tls_for(args.engine or "lua-smtp", cache), tls_engine = args.engine, timeout = 60,
    transport = ngx.socket.tcp(), local_name = "bench.example.test" }
end

local function bulk(args)
  local c = connect(args, true)
  local f = assert(io.open(args.file, "rb"))
  local ok, err = pcall(c.sendmail, c, f, { from = "bench@example.test", to = { "sink@example.test" } })
  f:close()
  if not ok then c:close(); error(err, 0) end
  c:quit()
  return 1
end

local function handshakes(args)
  local n = tonumber(args.n) or 100
  for _ = 1, n do
    local c = connect(args, false)
    c:helo()
    c:quit()
  end
  return n
end

function M.run()
  local args = ngx.req.get_uri_args()
  local ok, res = pcall(args.mode == "bulk" and bulk or handshakes, args)
  if ok then ngx.say("ok ", res) else ngx.say("error ", tostring(res)) end
end

return M
