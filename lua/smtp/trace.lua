-- Protocol trace (smtp.debug and the connect option 'debug'), with the
-- masking of credentials done here and nowhere else: AUTH payloads and
-- every line of a SASL exchange are replaced before any hook sees them.
local io_stderr = io.stderr

local trace = {}

local global_hook = nil

local function stderr_hook(direction, line)
  io_stderr:write(direction, ": ", line, "\n")
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
