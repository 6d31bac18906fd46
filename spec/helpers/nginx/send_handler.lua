-- nginx request handler for nginx_spec.lua: sends one message through
-- smtp with transport = ngx.socket.tcp() and answers with the sendmail
-- report (or the error) as JSON. Query arguments: host, port, from, to,
-- subject, timeout, tls (STARTTLS required, peer "localhost"), peer (the
-- tls_peer instead; "-" for none), server_name, verify ("none"), user,
-- password, plaintext (allow PLAIN without TLS), keepalive (pool size;
-- the connection goes back to the pool), relays ("port,port,...":
-- send through one smtp.pool kept by the worker, failing over between
-- those ports on 'host'), engine ("host": nginx's sslhandshake instead of
-- lua-smtp's TLS), ca (the CA file for lua-smtp's TLS), implicit (TLS
-- from the start), mech (the only SASL mechanism to use).
local smtp = require "smtp"
local ngx = ngx -- luacheck: ignore (the nginx global)

local M = {}

local function json(v)
  local t = type(v)
  if t == "table" then
    local out = {}
    if #v > 0 or next(v) == nil then
      for i, x in ipairs(v) do out[i] = json(x) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    for k, x in pairs(v) do
      if type(x) ~= "function" and type(x) ~= "userdata" then
        out[#out + 1] = json(tostring(k)) .. ":" .. json(x)
      end
    end
    table.sort(out)
    return "{" .. table.concat(out, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", c:byte())
    end) .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  end
  return "null"
end

-- smtp.pool objects by relay list, kept across requests by the worker:
-- the pool hands each connection to nginx's keepalive pool between
-- requests (a cosocket belongs to its request).
local pools = {}

-- TLS configs by their options, kept by the worker as an application
-- would (at module level): connections with the same one resume their
-- TLS sessions across requests.
local configs = {}

local function tls_config(args)
  local key = table.concat({ args.verify or "peer", args.server_name or "", args.ca or "" }, "|")
  local cfg = configs[key]
  if not cfg then
    cfg = smtp.tls_config { verify = args.verify or "peer", server_name = args.server_name, ca_file = args.ca }
    configs[key] = cfg
  end
  return cfg
end

local function pool_send(args)
  local key = args.host .. "|" .. args.relays
  local pool = pools[key]
  if not pool then
    local list = {}
    for port in args.relays:gmatch("%d+") do list[#list + 1] = { host = args.host, port = tonumber(port) } end
    pool = smtp.pool { servers = list, timeout = 5, local_name = "nginx.test", cooldown = 60,
      transport = function() return ngx.socket.tcp() end, retry = { limit = #list } }
    pools[key] = pool
  end
  local msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent through smtp.pool from nginx.\r\n")
    :format(args.from, args.to, args.subject or "nginx pool")
  return pool:send(msg)
end

function M.run()
  local args = ngx.req.get_uri_args()
  if args.relays then
    local ok, result = pcall(pool_send, args)
    if ok then
      ngx.say(json({ ok = true, report = result }))
    else
      ngx.say(json({ ok = false, kind = type(result) == "table" and result.kind or nil, error = tostring(result) }))
    end
    return
  end
  local opts = {
    host = args.host, port = tonumber(args.port), timeout = tonumber(args.timeout) or 10,
    transport = ngx.socket.tcp(), local_name = "nginx.test", tls_engine = args.engine,
  }
  if args.tls then
    if args.engine == "host" then
      opts.tls = { verify = args.verify or "peer", server_name = args.server_name }
    else
      opts.tls = tls_config(args)
    end
    opts.tls_peer = args.peer or "localhost"
    if opts.tls_peer == "-" then opts.tls_peer = nil end
    opts.tls_required = true
    if args.implicit then opts.tls_mode = "implicit" end
  end
  if args.user then opts.user, opts.password = args.user, args.password end
  if args.plaintext then opts.allow_plaintext = true end
  local msg = ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nSent from an nginx request handler.\r\n.dot line\r\n")
    :format(args.from, args.to, args.subject or "nginx")
  local ok, result = pcall(function()
    local client = smtp.connect(opts)
    -- authenticate's 'host' is the EHLO name, not the server's.
    client:authenticate { tls = opts.tls, tls_peer = opts.tls_peer, tls_required = opts.tls_required,
      user = opts.user, password = opts.password, allow_plaintext = opts.allow_plaintext,
      mechanisms = args.mech and { args.mech } or nil }
    local report = client:sendmail(msg)
    report.tls = client:tls_info()
    report.authenticated = client:authenticated()
    if args.keepalive then
      report.pooled = client:set_keepalive(30000, tonumber(args.keepalive))
    else
      client:quit()
    end
    return report
  end)
  if ok then
    ngx.say(json({ ok = true, report = result }))
  else
    ngx.say(json({ ok = false, kind = type(result) == "table" and result.kind or nil, error = tostring(result) }))
  end
end

return M
