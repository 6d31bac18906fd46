-- What differs between the Luas the suite runs under (lua5.1, lua5.3,
-- lua5.4, LuaJIT), for specs and helpers: the interpreter's command name
-- (subprocesses must load the same build of smtp.core), os.execute's exit
-- status, chunk loading with an environment, and a UTF-8 check without
-- the utf8 library. 5.4-only syntax (`<close>`) lives in strings that
-- only V.lua54 loads.
local V = {}

V.lua54 = _VERSION == "Lua 5.4"
V.luajit = type(rawget(_G, "jit")) == "table"
-- Debian names the interpreters after the version (lua5.1 ...) or luajit.
V.interpreter = V.luajit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

-- Runs `cmd` through /bin/sh; returns true when it exited 0, and the exit
-- code. 5.1 and LuaJIT return only a raw wait status, 5.2+ three values,
-- so the shell reports the code itself.
function V.execute(cmd)
  local f = assert(io.popen("(" .. cmd .. ") >/dev/null 2>&1; echo $?", "r"))
  local out = f:read("*a")
  f:close()
  local code = tonumber(out:match("(%d+)%s*$"))
  return code == 0, code
end

-- load(text, name, "t", env) on every Lua (5.1's load takes no string).
function V.load(text, name, env)
  if setfenv and not V.luajit then
    local f, err = loadstring(text, name)
    if f and env then setfenv(f, env) end
    return f, err
  end
  return load(text, name, "t", env)
end

function V.loadfile(path, env)
  local f = io.open(path, "rb")
  if not f then return nil, "cannot open " .. path end
  local text = f:read("*a")
  f:close()
  return V.load(text, "@" .. path, env)
end

-- True when `s` is well-formed UTF-8 (RFC 3629: no overlongs, surrogates
-- or code points above U+10FFFF), like utf8.len(s) ~= nil.
function V.utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, lo, hi
    lo, hi = 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else
      return false
    end
    for k = 1, len - 1 do
      local b = s:byte(i + k)
      if not b then return false end
      if k == 1 and (b < lo or b > hi) then return false end
      if k > 1 and (b < 0x80 or b > 0xBF) then return false end
    end
    i = i + len
  end
  return true
end

return V
