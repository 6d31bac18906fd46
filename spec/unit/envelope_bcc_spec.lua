-- Review M2: the header parser of raw messages (smtp.envelope) reads line
-- ends as the wire does (bare CR and bare LF each end a line), accepts
-- "name WSP :" (RFC 5322 4.5), never lets Bcc or Resent-Bcc through and
-- sends to their addresses. Every case runs for a string, a file and a
-- source giving one byte per call (a line end split across chunks), and
-- is judged on the wire form (spec/helpers/wire.lua), not on raw bytes.
local envelope = require "smtp.envelope"
local wire = require "helpers.wire"

local function source_of(kind, msg)
  if kind == "string" then return msg end
  if kind == "file" then
    local f = assert(io.tmpfile())
    f:write(msg)
    f:seek("set")
    return f
  end
  local i = 0
  return function()
    i = i + 1
    if i <= #msg then return msg:sub(i, i) end
  end
end

-- The prepared envelope, and the header lines and body as they go out.
local function prepare(kind, msg, opts)
  local env = envelope.prepare(source_of(kind, msg), opts or {})
  local out = {}
  while true do
    local chunk, err = env.source()
    assert(err == nil, err)
    if chunk == nil then break end
    out[#out + 1] = chunk
  end
  local w = wire.reference(table.concat(out), false)
  local lines, pos = {}, 1
  while true do
    local e = assert(w:find("\r\n", pos, true), "no header end on the wire")
    if e == pos then pos = e + 2; break end
    lines[#lines + 1] = w:sub(pos, e - 1)
    pos = e + 2
  end
  return env, lines, w:sub(pos)
end

local KINDS = { "string", "file", "bytes" }

-- Each case: message, expected recipients, header lines on the wire,
-- body on the wire (the wire form of the body given).
local CASES = {
  { "bare CR line ends",
    "From: a@x.org\rTo: b@x.org\rSubject: hello\rBcc: hidden@x.org\r\rbody\rline\r",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org", "Subject: hello" }, "body\rline\r" },
  { "a bare CR inside a CRLF message (review M2 variant a)",
    "From: a@x.org\r\nTo: b@x.org\r\nSubject: hello\rBcc: hidden@x.org\r\n\r\nbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org", "Subject: hello" }, "body\r\n" },
  { "bare LF line ends",
    "From: a@x.org\nTo: b@x.org\nBcc: hidden@x.org\nSubject: s\n\nbody\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org", "Subject: s" }, "body\n" },
  { "mixed line ends",
    "From: a@x.org\r\nTo: b@x.org\nCc: c@x.org\rBcc: hidden@x.org\r\nSubject: s\n\r\nbody",
    { "b@x.org", "c@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org", "Cc: c@x.org", "Subject: s" },
    "body" },
  { "'Bcc :' and 'BCC<TAB>:' (obsolete WSP before the colon)",
    "From: a@x.org\r\nTo: b@x.org\r\nBcc : hidden@x.org\r\nBCC\t: other@x.org\r\nbcc:third@x.org\r\n\r\nbody\r\n",
    { "b@x.org", "hidden@x.org", "other@x.org", "third@x.org" }, { "From: a@x.org", "To: b@x.org" },
    "body\r\n" },
  { "a folded Bcc (CRLF, bare CR and bare LF continuation lines)",
    "From: a@x.org\r\nTo: b@x.org\r\nBcc: h1@x.org,\r\n h2@x.org,\r\th3@x.org,\n  h4@x.org\r\nSubject: s\r\n\r\nbody\r\n",
    { "b@x.org", "h1@x.org", "h2@x.org", "h3@x.org", "h4@x.org" },
    { "From: a@x.org", "To: b@x.org", "Subject: s" }, "body\r\n" },
  { "Bcc as the first header",
    "Bcc: hidden@x.org\rFrom: a@x.org\r\nTo: b@x.org\r\n\r\nbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\r\n" },
  { "Bcc as the last header",
    "From: a@x.org\r\nTo: b@x.org\r\nBcc: hidden@x.org\r\n\r\nbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\r\n" },
  { "Bcc ending in a bare CR, the header end CR CR",
    "From: a@x.org\r\nTo: b@x.org\r\nBcc: hidden@x.org\r\rbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\r\n" },
  { "Bcc ending in a bare CR, the header end CR CRLF",
    "From: a@x.org\r\nTo: b@x.org\r\nBcc: hidden@x.org\r\r\nbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\r\n" },
  { "Bcc ending in LF after a field ending in a bare CR, the header end LF LF",
    "From: a@x.org\r\nTo: b@x.org\rBcc: hidden@x.org\n\nbody\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\n" },
  { "Bcc ending in LF, the header end LF CR",
    "From: a@x.org\nTo: b@x.org\nBcc: hidden@x.org\n\rbody\r\n",
    { "b@x.org", "hidden@x.org" }, { "From: a@x.org", "To: b@x.org" }, "body\r\n" },
  { "Resent-Bcc, in any case and with WSP before the colon",
    "Resent-From: r@x.org\r\nResent-To: new@x.org\r\nResent-Bcc: rh@x.org\rRESENT-BCC : rh2@x.org\r\n" ..
      "From: a@x.org\r\nTo: b@x.org\r\nBcc: old@x.org\r\n\r\nbody\r\n",
    { "new@x.org", "rh@x.org", "rh2@x.org" },
    { "Resent-From: r@x.org", "Resent-To: new@x.org", "From: a@x.org", "To: b@x.org" }, "body\r\n" },
}

describe("raw message headers read as the wire reads them (review M2)", function()
  for _, case in ipairs(CASES) do
    local name, msg, rcpts, headers, body = case[1], case[2], case[3], case[4], case[5]
    for _, kind in ipairs(KINDS) do
      it(name .. " (" .. kind .. ")", function()
        local env, lines, out_body = prepare(kind, msg)
        assert.same(rcpts, env.recipients)
        assert.equal("a@x.org", env.from)
        assert.same(headers, lines)
        assert.equal(wire.reference(body, false), out_body)
      end)
    end
  end

  it("removes hidden fields when the recipients are given (opts.to)", function()
    for _, kind in ipairs(KINDS) do
      local env, lines = prepare(kind,
        "From: a@x.org\rBcc : h@x.org\rTo: b@x.org\rResent-Bcc: r@x.org\r\rbody\r",
        { from = "s@x.org", to = { "z@x.org" } })
      assert.same({ "z@x.org" }, env.recipients)
      assert.same({ "From: a@x.org", "To: b@x.org" }, lines)
    end
  end)

  it("ends the header block at an empty line of bare CRs and LFs, never later", function()
    for _, sep in ipairs({ "\r\r", "\n\n", "\n\r", "\r\n\r", "\r\n\n", "\r\r\n", "\n\r\n" }) do
      for _, kind in ipairs(KINDS) do
        local msg = "From: a@x.org\r\nTo: b@x.org" .. sep .. "Bcc: in-body@x.org\r\n"
        local env, lines, body = prepare(kind, msg)
        assert.same({ "b@x.org" }, env.recipients)
        assert.same({ "From: a@x.org", "To: b@x.org" }, lines)
        assert.equal("Bcc: in-body@x.org\r\n", body)
      end
    end
  end)

  it("sends a message without hidden fields unchanged, and keeps its size", function()
    local msg = "From: a@x.org\nTo: b@x.org\rSubject: bcc\n\nBcc: body@x.org\n"
    local env = envelope.prepare(msg, {})
    assert.equal(msg, env.source())
    assert.equal(#msg, env.size)
    assert.same({ "b@x.org" }, env.recipients)
  end)

  it("counts the rewritten header in the size of a file", function()
    local msg = "From: a@x.org\nTo: b@x.org\nBcc: h@x.org\n\nbody\n"
    local env = envelope.prepare(source_of("file", msg), {})
    local out = {}
    for chunk in env.source do out[#out + 1] = chunk end
    assert.equal(#table.concat(out), env.size)
  end)

  it("keeps the 1 MiB limit on a header block without an end", function()
    local sent = 0
    local function src()
      if sent > 2 * 1048576 then return nil end
      sent = sent + 65536
      return ("X-Pad: " .. ("p"):rep(60) .. "\r"):rep(1024)
    end
    local ok, err = pcall(envelope.prepare, src, { from = "a@x.org", to = "b@x.org" })
    assert.is_false(ok)
    assert.equal("usage", err.kind)
    assert.truthy(tostring(err.message):find("1 MiB", 1, true))
  end)
end)

local cost = require "helpers.cost"

-- 16x the bytes: about 16x the time when linear, 256x when quadratic.
local LIMIT = 64
local SMALL, LARGE = 65536, 1048576 - 4096

local function drain(env)
  for _ in env.source do end
end

describe("header block cost is linear in its size (review M2)", function()
  local function ratio(fn, make)
    return cost.ratio(fn, make, SMALL, LARGE, 0.1, 200)
  end

  -- Short fields with bare CR ends and a Bcc to remove.
  local function many_fields(n)
    local line = "X-Field: " .. ("v"):rep(50) .. "\r"
    return "From: a@x.org\rTo: b@x.org\rBcc: h@x.org\r" .. line:rep(math.floor(n / #line)) .. "\rbody\r"
  end
  -- One Bcc folded over many lines (a field appended line by line would
  -- be copied once per line).
  local function folded(n)
    local line = " " .. ("f"):rep(60) .. "\r\n"
    return "From: a@x.org\r\nTo: b@x.org\r\nBcc: h@x.org\r\nX-Long: x\r\n" ..
      line:rep(math.floor(n / #line)) .. "\r\nbody\r\n"
  end
  -- A source of 64-byte chunks (a buffer grown chunk by chunk, or
  -- rescanned per chunk, would cost the square of the header size).
  local function chunked(msg)
    local pos = 1
    return function()
      if pos > #msg then return nil end
      local c = msg:sub(pos, pos + 63)
      pos = pos + 64
      return c
    end
  end
  local OPTS = { from = "a@x.org", to = "b@x.org" }

  it("parses many short fields (string) in linear time", function()
    local r = ratio(function(m) drain(envelope.prepare(m, {})) end, many_fields)
    assert.is_true(r < LIMIT, ("1 MiB / 64 KiB cost ratio %.1f"):format(r))
    local env = envelope.prepare(many_fields(LARGE), {})
    assert.same({ "b@x.org", "h@x.org" }, env.recipients)
  end)

  it("parses one long folded field (string) in linear time", function()
    local r = ratio(function(m) drain(envelope.prepare(m, OPTS)) end, folded)
    assert.is_true(r < LIMIT, ("1 MiB / 64 KiB cost ratio %.1f"):format(r))
  end)

  it("reads a header block from small chunks in linear time", function()
    local r = ratio(function(m) drain(envelope.prepare(chunked(m), OPTS)) end, many_fields)
    assert.is_true(r < LIMIT, ("1 MiB / 64 KiB cost ratio %.1f"):format(r))
  end)
end)
