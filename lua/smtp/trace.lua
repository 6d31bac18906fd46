-- Protocol trace (smtp.debug and the connect option 'debug'), with the
-- masking of credentials done here and nowhere else: AUTH payloads and
-- every line of a SASL exchange are replaced before any hook sees them.
-- Also the one rule for printing server text (trace.printable).
local io_stderr = io.stderr
local tostring = tostring

local trace = {}

local global_hook = nil

-- "\92x" is backslash-x, written so because 5.1 has no \x escapes and the
-- portability spec refuses the sequence in code.
local function hex(c)
  return ("\92x%02x"):format(c:byte())
end

--- Server text as it may be printed on a terminal. A reply line may hold
-- any byte but LF, and a terminal obeys ESC sequences, BEL, CR and the
-- other controls in it (escape injection), so every C0 control but TAB,
-- DEL, and the UTF-8 form of a C1 control (U+0080-U+009F: some terminals
-- take U+009B as CSI) become `\xHH`. Other bytes are left alone (UTF-8
-- text stays readable). Only printing uses this: errors and user hooks
-- keep the raw text.
-- @tparam string s
-- @treturn string
function trace.printable(s)
  s = tostring(s)
  -- %z, not a literal NUL: 5.1 and LuaJIT patterns stop at NUL.
  if not s:find("[%z\1-\8\10-\31\127\194]") then return s end
  s = s:gsub("\194[\128-\159]", function(c) return hex(c) .. hex(c:sub(2)) end)
  return (s:gsub("[%z\1-\8\10-\31\127]", hex))
end

local function stderr_hook(direction, line)
  io_stderr:write(direction, ": ", trace.printable(line), "\n")
end

--- Normalises a debug option: true -> stderr, a function -> itself,
-- false/nil -> nil.
function trace.hook_of(v)
  if v == true then return stderr_hook end
  if type(v) == "function" then return v end
  return nil
end

--- smtp.debug(on_or_fn): the process-wide trace hook.
function trace.set_global(v)
  global_hook = trace.hook_of(v)
end

function trace.global()
  return global_hook
end

--- The command as it may be shown: "AUTH PLAIN ***" keeps the mechanism
-- and hides the initial response.
function trace.mask_command(line)
  local mech, rest = line:match("^[Aa][Uu][Tt][Hh]%s+(%S+)%s*(.*)$")
  if mech then
    return rest ~= "" and ("AUTH " .. mech .. " ***") or ("AUTH " .. mech)
  end
  return line
end

return trace
