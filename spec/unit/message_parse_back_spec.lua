-- Every message smtp.message builds here is read back by two independent
-- parsers: Python's email package (policy.default, spec/helpers/
-- parse_back.py) and Nodemailer's mailparser (spec/helpers/node/
-- parse_back.js, installed by tools/install-node-deps.sh). Subjects,
-- names, bodies and attachment bytes must come back equal. Without node or
-- mailparser those cases are pending, never silently passed.
local json = require "dkjson"
local Message = require "smtp.message"
local V = require "helpers.luaver"

local PYTHON = "/usr/bin/python3"
local NODE_DIR = "spec/helpers/node"

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local d = f:read("*a")
  f:close()
  return d
end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local d = f:read(n)
  f:close()
  return d
end

local function node_missing()
  local ok = V.execute("command -v node")
  if not ok then return "node is not installed" end
  local f = io.open(NODE_DIR .. "/node_modules/mailparser/package.json")
  if not f then return "mailparser is not installed (run tools/install-node-deps.sh)" end
  f:close()
  return nil
end

local function mktemp_dir()
  local p = io.popen("mktemp -d /tmp/smtp-parseback.XXXXXX")
  local dir = p:read("*l")
  p:close()
  return dir
end

-- Runs one parser on the message file; returns the decoded summary.
local function parse(parser, file, dir)
  local out = dir .. "/" .. parser
  os.execute("mkdir -p " .. sh_quote(out))
  local cmd
  if parser == "python" then
    cmd = PYTHON .. " spec/helpers/parse_back.py " .. sh_quote(file) .. " " .. sh_quote(out)
  else
    cmd = "timeout 120 node " .. NODE_DIR .. "/parse_back.js " .. sh_quote(file) .. " " .. sh_quote(out)
  end
  local p = io.popen(cmd .. " 2>" .. sh_quote(dir .. "/" .. parser .. ".err"))
  local text = p:read("*a")
  local ok = p:close()
  assert(ok, parser .. " failed: " .. read(dir .. "/" .. parser .. ".err"))
  local v, _, err = json.decode(text, 1, json.null)
  assert(v, "bad JSON from " .. parser .. ": " .. tostring(err))
  return v
end

-- Line ends are not content (the wire carries CRLF; parsers differ).
local function lf(s)
  if s == nil or s == json.null then return nil end
  return (s:gsub("\r\n", "\n"))
end

local function mailbox_list(v)
  if v == nil then return nil end
  local parsed = require("smtp.address")
  local out = {}
  local items = type(v) == "string" and parsed.parse_list(v) or (v.address and { v } or v)
  for _, a in ipairs(items) do
    if type(a) == "string" then
      for _, x in ipairs(parsed.parse_list(a)) do out[#out + 1] = x end
    else
      out[#out + 1] = { name = a.name, address = a.address }
    end
  end
  return out
end

local function got_list(v)
  if v == nil or v == json.null then return nil end
  local out = {}
  for i, a in ipairs(v) do
    out[i] = { name = (a.name ~= json.null and a.name ~= "") and a.name or nil, address = a.address }
  end
  return out
end

-- The expectations a spec implies, checked against one parser's summary.
local function check(spec, got, parser, dir)
  if spec.subject then assert.equal(spec.subject, got.subject, parser .. ": subject") end
  for _, f in ipairs({ "from", "to", "cc", "reply_to" }) do
    if spec[f] then assert.same(mailbox_list(spec[f]), got_list(got[f]), parser .. ": " .. f) end
  end
  assert.is_false(got.has_bcc, parser .. ": a Bcc header went out")
  if spec.text ~= nil then assert.equal(lf(spec.expect_text or spec.text), lf(got.text), parser .. ": text") end
  if spec.html ~= nil then assert.equal(lf(spec.html), lf(got.html), parser .. ": html") end
  local atts = spec.attachments or {}
  assert.equal(#atts, #got.attachments, parser .. ": attachment count")
  -- Python lists parts in tree order (related before mixed); match by name.
  local by_name = {}
  for _, a in ipairs(got.attachments) do by_name[a.filename] = a end
  for _, a in ipairs(atts) do
    local filename = a.filename or (a.path and a.path:match("[^/]+$"))
    local g = by_name[filename]
    assert.truthy(g, parser .. ": no attachment named " .. tostring(filename))
    local bytes = a.data or read(a.path)
    assert.equal(#bytes, g.size, parser .. ": size of " .. filename)
    assert.is_true(bytes == read(g.file), parser .. ": bytes of " .. filename .. " differ")
    if a.content_type then
      assert.equal(a.content_type:match("^[^;%s]+"):lower(), g.content_type, parser .. ": type of " .. filename)
    end
    if a.content_id then
      assert.equal(a.content_id:gsub("^<", ""):gsub(">$", ""), (g.content_id:gsub("^<", ""):gsub(">$", "")))
    end
  end
  if parser == "python" then
    assert.same({}, got.defects, "python reported defects")
  end
  local _ = dir
end

local tmp_files = {}
local function tmp_file(data)
  local p = os.tmpname()
  write(p, data)
  tmp_files[#tmp_files + 1] = p
  return p
end

local LOGO = "\137PNG\r\n\26\n" .. random_bytes(2000)
local PDF = "%PDF-1.4\n" .. random_bytes(30000) .. "\n%%EOF\n"

local cases = {
  { "a real notification: UTF-8 names and subject, text and HTML, inline logo, PDF", {
    from = "Jürgen Müller <juergen@example.org>",
    to = { { name = "Zoë Ångström", address = "zoe@example.org" }, '"Bob, the builder" <bob@example.org>' },
    cc = '"Doe, Jane" <jane@example.org>',
    reply_to = "Support Team <support@example.org>",
    bcc = "audit@example.org",
    subject = "Ihre Rechnung Nr. 4711 — fällig am 3. März ✓",
    text = "Hallo Zoë,\n\nim Anhang finden Sie Ihre Rechnung.\n\nGrüße\nJürgen\n",
    html = '<html><body><img src="cid:logo@example.org"><p>Hallo Zoë,</p><p>Grüße</p></body></html>\n',
    attachments = {
      { data = LOGO, filename = "logo.png", content_type = "image/png", inline = true, content_id = "logo@example.org" },
      { data = PDF, filename = "Rechnung März.pdf", content_type = "application/pdf" },
    },
  } },
  { "a non-ASCII subject split across many encoded-words", {
    to = "a@example.org",
    subject = ("Größenänderung der Übersetzung — 日本語の件名も含む ✓ "):rep(6) .. "Ende",
    text = "x\n",
  } },
  { "a 10 MB binary attachment read from a file", {
    to = "a@example.org", subject = "big", text = "see attachment\n",
    attachments = { { path = "@big", filename = "random.bin" } },
  } },
  { "a 1 MB binary attachment given as data", {
    to = "a@example.org", subject = "data", text = "x\n",
    attachments = { { data = random_bytes(1048576), filename = "data.bin" } },
  } },
  { "a text with lines of 2,000 characters", {
    to = "a@example.org", subject = "long lines",
    text = ("A"):rep(2000) .. "\n" .. ("b c "):rep(500) .. "\n" .. ("ü"):rep(1000) .. "\nend\n",
  } },
  { "lines starting with '.' and 'From '", {
    to = "a@example.org", subject = "dots",
    text = ".\n..\n. leading dot\nFrom here\nFrom: not a header\n>From quoted\n.\nlast\n",
    html = "<pre>\n.\nFrom me\n</pre>\n",
  } },
  { "the same lines in a single quoted-printable part", {
    to = "a@example.org", subject = "dots QP",
    text = ".\nFrom here ü\n.\n",
  } },
  { "text without a final line break (QP soft break keeps it exact)", {
    to = "a@example.org", subject = "no newline", text = "Grüße ohne Zeilenende",
  } },
  { "mostly non-ASCII text (base64 text part)", {
    to = "a@example.org", subject = "日本語", text = ("日本語のテキストです。\n"):rep(20),
    html = ("<p>日本語</p>\n"):rep(10),
  } },
  { "8bit text when asked", {
    to = "a@example.org", subject = "8bit", text = "Grüße\n", transfer_encoding = "8bit",
  } },
  { "trailing white space, tabs, '=' and control bytes", {
    to = "a@example.org", subject = "  spaced   subject\twith tab ",
    text = "trailing space \ntrailing tab\t\n= sign =3D\n\1\2 controls\n   \n",
  } },
  { "ISO-8859-1 text and subject", {
    to = "a@example.org", charset = "ISO-8859-1", subject = "Gr\252\223e", text = "Gr\252\223e aus K\246ln\n",
    expect = { subject = "Grüße", text = "Grüße aus Köln\n" },
  } },
  { "attachment names: long non-ASCII, quotes, backslash, no extension", {
    to = "a@example.org", subject = "names", text = "x\n",
    attachments = {
      { data = "1", filename = ("Ünïcödé Dätei mit einem sehr langen Namen "):rep(3) .. ".txt" },
      { data = "2", filename = 'say "hi" \\ there.txt' },
      { data = "3", filename = "README" },
      { data = "5", filename = ("ü"):rep(300) .. ".bin" },
      { data = "4", filename = "日本語のファイル名.csv", content_type = "text/csv" },
    },
  } },
  { "many recipients and special display names", {
    from = { name = "O'Brien, Seán (Ops)", address = "sean@example.org" },
    to = (function()
      local t = {}
      for i = 1, 25 do t[i] = { name = "Empfänger Nummer " .. i, address = "r" .. i .. "@example.org" } end
      return t
    end)(),
    cc = { { name = 'Quote "Me"', address = "q@example.org" }, { name = "=?not-encoded?=", address = "n@example.org" } },
    subject = "=?UTF-8?B?SGk=?= is literal text", text = "x\n",
  } },
  { "only attachments, no body", {
    to = "a@example.org", subject = "files only",
    attachments = { { data = "abc", filename = "a.txt" }, { data = "", filename = "empty.bin" } },
  } },
  { "an empty group and Bcc only", {
    to = "undisclosed-recipients:;", bcc = "hidden@example.org", subject = "bcc", text = "x\n",
    skip_to = true,
  } },
}

describe("smtp.message parse-back #parseback", function()
  local dir, big
  local node_reason = node_missing()

  setup(function()
    dir = mktemp_dir()
    big = tmp_file(random_bytes(10 * 1024 * 1024))
  end)

  teardown(function()
    for _, p in ipairs(tmp_files) do os.remove(p) end
    if dir and dir:find("^/tmp/smtp%-parseback%.") then os.execute("rm -rf " .. sh_quote(dir)) end
  end)

  for i, case in ipairs(cases) do
    local name, spec = case[1], case[2]
    local function prepare()
      local s = {}
      for k, v in pairs(spec) do s[k] = v end
      s.from = s.from or "Sender <sender@example.org>"
      if s.attachments then
        local atts = {}
        for j, a in ipairs(s.attachments) do
          atts[j] = {}
          for k, v in pairs(a) do atts[j][k] = v end
          if a.path == "@big" then atts[j].path = big end
        end
        s.attachments = atts
      end
      local build = {}
      for k, v in pairs(s) do
        if k ~= "expect" and k ~= "skip_to" and k ~= "expect_text" then build[k] = v end
      end
      local file = dir .. "/msg" .. i .. ".eml"
      write(file, tostring(Message.new(build)))
      local expect = s
      if s.expect then
        for k, v in pairs(s.expect) do expect[k] = v end
      end
      if s.skip_to then expect.to = nil end
      return expect, file
    end

    it("Python email reads back " .. name, function()
      local expect, file = prepare()
      check(expect, parse("python", file, dir), "python", dir)
    end)

    it("mailparser reads back " .. name, function()
      if node_reason then
        pending(node_reason)
        return
      end
      local expect, file = prepare()
      check(expect, parse("node", file, dir), "mailparser", dir)
    end)
  end
end)
