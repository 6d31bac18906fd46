--- OAuth token refresh (issue 25 item 1): `token` given as a function
-- `token(user, stale)`. A source asks it for the token before AUTH and,
-- when the server refuses the token, once more with `stale = true`; the
-- AUTH is then tried again with the new token, on the same connection or,
-- when the server closed it, on a new one (`open`). The function is
-- called at most twice per AUTH. The token itself never goes into an
-- error, a trace or `tostring`.
-- @module smtp.oauth
local Error = require "smtp.error"

local type, tostring, pcall, error, setmetatable, pairs =
  type, tostring, pcall, error, setmetatable, pairs

local M = {}

local OAUTH = { XOAUTH2 = true, OAUTHBEARER = true }

--- Whether `mech` (upper case) is a bearer-token mechanism.
function M.is_oauth(mech)
  return OAUTH[mech] == true
end

local Source = {}
Source.__index = Source

function Source.__tostring()
  return "smtp.oauth token source"
end

--- A source for one AUTH (possibly spread over two connections).
-- @tparam function fn the caller's `token(user, stale)`
function M.source(fn)
  return setmetatable({ fn = fn, calls = 0, refreshed = false, reconnect = false }, Source)
end

-- Calls the function and checks its answer. Raising is kind
-- 'authentication' (no token to be had: AUTH cannot succeed, and a token
-- service being down is not a mistake in the caller's code); a non-string
-- or empty answer is kind 'usage'. Neither message shows a token.
function Source:_call(user, stale)
  self.calls = self.calls + 1
  local ok, tok = pcall(self.fn, user, stale)
  if not ok then
    local why = Error.is(tok) and tok.message or tostring(tok)
    error(Error.new { kind = "authentication", cause = "token",
      message = "the token function raised an error" .. (stale and " (asked for a fresh token)" or "") ..
        ": " .. why:sub(1, 200) }, 0)
  end
  if type(tok) ~= "string" or tok == "" then
    error(Error.new { kind = "usage", message = "the token function must return a non-empty string, got " ..
      (tok == "" and "an empty string" or type(tok)) }, 0)
  end
  return tok
end

--- The token to use now: the fresh one after a refresh, else the
-- function's first answer (asked for once).
function Source:get(user)
  if self.fresh == nil then self.fresh = self:_call(user, false) end
  return self.fresh
end

--- Whether `err` is the server refusing the token (RFC 7628 3.2.2: the
-- error challenge then 535, or a 535 alone) and no refresh was made yet.
function Source:should_refresh(err)
  if self.refreshed or not Error.is(err) or err.kind ~= "authentication" then return false end
  local code = err.code
  return code == 535 or (err.detail ~= nil and type(code) == "number" and code >= 500)
end

--- Asks the function for a new token (`stale = true`), once.
function Source:refresh(user)
  self.refreshed = true
  self.fresh = nil
  self.fresh = self:_call(user, true)
  return self.fresh
end

local function copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return o
end

--- Connects and authenticates for `smtp.send`, `smtp.verify` and the
-- pool: `connect()` returns a new greeted client; `opts` are the
-- authenticate options (the connection's `host` is not the EHLO name, so
-- `local_name` is given as `host`). When a refused token was refreshed
-- but the server had closed the connection, one new connection is made
-- for the retry. Returns the authenticated client; on failure the client
-- is closed and the error raised.
function M.open(connect, opts)
  local auth = copy(opts)
  auth.host = opts.local_name
  if type(opts.token) == "function" then auth._token_source = M.source(opts.token) end
  local src = auth._token_source
  for attempt = 1, 2 do
    local client = connect()
    local ok, err = pcall(client.authenticate, client, auth)
    if ok then return client end
    client:close()
    if not (attempt == 1 and src and src.reconnect) then error(err, 0) end
    src.reconnect = false
  end
end

return M
