-- busted output handler: the gtest handler's per-test lines, then the
-- closing line CI reads, "N passed, N failed" from the real counts
-- (errors count as failures; pending tests are reported as skipped).
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.gtest'(options)

  busted.subscribe({ 'suite', 'end' }, function()
    -- gtest lists errors by name only; show what was raised.
    for _, e in ipairs(handler.errors) do
      io.write("\nError -> ", e.name or "?", "\n", tostring(e.message), "\n")
      if e.trace and e.trace.traceback then io.write(e.trace.traceback, "\n") end
    end
    local failed = handler.failuresCount + handler.errorsCount
    io.write(string.format("%d passed, %d failed, %d skipped\n",
      handler.successesCount, failed, handler.pendingsCount))
    io.flush()
    return nil, true
  end, { priority = 100 })

  return handler
end
