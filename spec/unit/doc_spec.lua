-- The API reference (LDoc, `make doc`) stays complete: every public
-- function of lua/smtp.lua, every public method of the Client and every
-- public function of smtp.Error has a `---` doc comment right above it,
-- and the options and error kinds of SPEC.md appear in those comments.
-- With ldoc installed, the reference is generated and read back.

local V = require "helpers.luaver"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function lines_of(path)
  local out = {}
  for line in (read(path) .. "\n"):gmatch("([^\n]*)\n") do out[#out + 1] = line end
  return out
end

-- The doc comment block right above line i ("" when there is none): the
-- comment lines directly above, which must start with a `---` line.
local function doc_above(lines, i)
  local j = i - 1
  while j >= 1 and lines[j]:match("^%s*%-%-") do j = j - 1 end
  local first = j + 1
  if first == i or not lines[first]:match("^%s*%-%-%-") then return nil end
  return table.concat(lines, "\n", first, i - 1)
end

-- Public functions of a file: `function <tbl>.name` / `function <tbl>:name`
-- at the start of a line, for the given table names, without a leading
-- underscore. Returns a list of {name=, line=, doc=}.
local function public_functions(path, tables)
  local lines = lines_of(path)
  local out = {}
  for i, line in ipairs(lines) do
    local tbl, sep, name = line:match("^function ([%w_]+)([%.:])([%w_]+)%s*%(")
    if tbl and tables[tbl] and tables[tbl] == sep and not name:find("^_") then
      out[#out + 1] = { name = tbl .. sep .. name, line = i, doc = doc_above(lines, i) }
    end
  end
  return out
end

local PUBLIC = {
  { "lua/smtp.lua", { smtp = "." } },
  { "lua/smtp/client.lua", { Client = ":" } },
  { "lua/smtp/error.lua", { Error = "." } },
}

local function docs_of(path, tables)
  local by_name = {}
  for _, f in ipairs(public_functions(path, tables)) do by_name[f.name] = f.doc or "" end
  return by_name
end

describe("API documentation", function()
  describe("the checker", function()
    it("finds a doc comment only when it starts with --- and touches the function", function()
      local lines = {
        "--- Documented.", "-- @tparam string x", "function smtp.a(x)",
        "-- Only a plain comment.", "function smtp.b()",
        "--- Detached.", "", "function smtp.c()",
        "function smtp.d()",
      }
      assert.equal("--- Documented.\n-- @tparam string x", doc_above(lines, 3))
      assert.is_nil(doc_above(lines, 5))
      assert.is_nil(doc_above(lines, 8))
      assert.is_nil(doc_above(lines, 9))
    end)

    it("sees every public method of the Client and skips private ones", function()
      local names = {}
      for _, f in ipairs(public_functions("lua/smtp/client.lua", { Client = ":" })) do names[f.name] = true end
      for _, m in ipairs({ "helo", "authenticate", "sendmail", "sendmany", "quit", "close", "tls_info" }) do
        assert.is_true(names["Client:" .. m], m)
      end
      assert.is_nil(names["Client:_abort"])
    end)
  end)

  for _, entry in ipairs(PUBLIC) do
    local path, tables = entry[1], entry[2]
    it("documents every public function in " .. path, function()
      local missing = {}
      local found = public_functions(path, tables)
      assert.is_true(#found > 0, "no public function found in " .. path)
      for _, f in ipairs(found) do
        if not f.doc then missing[#missing + 1] = ("%s:%d: %s"):format(path, f.line, f.name) end
      end
      assert.equal("", table.concat(missing, "\n"),
        "public functions without a --- doc comment right above them:\n" .. table.concat(missing, "\n"))
    end)
  end

  -- SPEC.md's options, fields and kinds, each of which must be named in
  -- the doc comment of the function that takes it.
  local OPTIONS = {
    { "lua/smtp.lua", { smtp = "." }, "smtp.connect", { "host", "port", "timeout", "timeouts", "tls_mode", "tls",
      "transport", "proxy", "local_address", "protocol", "debug", "local_name" } },
    { "lua/smtp.lua", { smtp = "." }, "smtp.tls_config", { "verify", "ca_file", "ca_path", "ca_pem", "cert_file",
      "key_file", "cert_pem", "key_pem", "min_version", "max_version", "server_name" } },
    { "lua/smtp/client.lua", { Client = ":" }, "Client:authenticate", { "host", "tls", "tls_required", "tls_peer",
      "mechanisms", "sasl_params", "user", "authz", "password", "token", "allow_plaintext" } },
    { "lua/smtp/client.lua", { Client = ":" }, "Client:sendmail", { "from", "to", "all_or_nothing", "chunking",
      "dsn", "notify", "ret", "envid", "orcpt", "requiretls", "progress", "accepted", "rejected", "reply",
      "queue_id" } },
    { "lua/smtp/error.lua", { Error = "." }, "Error.new", { "kind", "message", "code", "enhanced", "lines",
      "command", "recipient", "outcome", "retryable" } },
  }
  for _, o in ipairs(OPTIONS) do
    it("names every option of " .. o[3] .. " in its doc comment", function()
      local doc = docs_of(o[1], o[2])[o[3]] or ""
      local missing = {}
      for _, name in ipairs(o[4]) do
        -- `name`, name=, {name = ..., `name = ...`, ", name" as a list item
        if not doc:find("[`{,%s]" .. name .. "%s*[=`,}]") then
          missing[#missing + 1] = name
        end
      end
      assert.equal("", table.concat(missing, ", "), o[3] .. "'s doc comment does not name: " ..
        table.concat(missing, ", "))
    end)
  end

  it("names every error kind in the doc comment of smtp.Error's kinds", function()
    local src = read("lua/smtp/error.lua")
    local doc = src:match("(%-%-%- The kinds.-)\nError%.kinds") or ""
    for _, kind in ipairs({ "protocol", "authentication", "transient", "permanent", "timeout", "tls", "io",
      "usage" }) do
      assert.truthy(doc:find("`" .. kind .. "`", 1, true), "kind " .. kind .. " is not documented")
    end
  end)

  describe("generated with ldoc", function()
    local out_dir
    local function ldoc_available()
      return (V.execute("command -v ldoc"))
    end

    setup(function()
      if not ldoc_available() then return end
      out_dir = os.tmpname()
      os.remove(out_dir)
      local p = assert(io.popen("ldoc -d " .. out_dir .. " . 2>&1"))
      local log = p:read("*a")
      p:close()
      assert(io.open(out_dir .. "/index.html"), "ldoc produced no index.html:\n" .. log)
    end)

    teardown(function()
      if out_dir then os.execute("rm -rf '" .. out_dir .. "'") end
    end)

    it("contains every public function, method and error kind", function()
      if not out_dir then
        pending("ldoc is not installed (Debian lua-ldoc; make deps installs it)")
        return
      end
      local module = read(out_dir .. "/modules/smtp.html")
      local client = read(out_dir .. "/classes/smtp.Client.html")
      local err = read(out_dir .. "/modules/smtp.Error.html")
      for _, f in ipairs(public_functions("lua/smtp.lua", { smtp = "." })) do
        assert.truthy(module:find('name = "' .. f.name:gsub("^smtp%.", "") .. '"', 1, true), f.name)
      end
      for _, f in ipairs(public_functions("lua/smtp/client.lua", { Client = ":" })) do
        assert.truthy(client:find('name = "smtp.' .. f.name .. '"', 1, true), f.name)
      end
      for _, kind in ipairs({ "protocol", "authentication", "transient", "permanent", "timeout", "tls", "io",
        "usage" }) do
        assert.truthy(err:find(">" .. kind .. "<", 1, true), kind)
      end
      -- markdown is rendered (lua-discount), not shown as raw backticks
      assert.is_nil(client:find("`tls`", 1, true))
      -- private helpers stay out of the reference
      assert.is_nil(client:find("smtp.Client:_", 1, true))
    end)
  end)
end)
