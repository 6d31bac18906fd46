-- busted output handler: the gtest handler's per-test lines, then the
-- closing line CI reads, "N passed, N failed, N skipped" from the real
-- counts (errors count as failures; pending tests are reported as skipped).
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.gtest'(options)

  -- gtest's closing list needs trace.short_src and trace.currentline on
  -- every element; a file that fails to load (and, on 5.1, some errors)
  -- has a trace without them. Runs before gtest's own suite-end listener.
  busted.subscribe({ 'suite', 'end' }, function()
    for _, list in ipairs({ handler.failures, handler.errors, handler.pendings }) do
      for _, t in ipairs(list or {}) do
        local e = t.element
        if type(e) == 'table' then
          if type(e.trace) ~= 'table' then e.trace = {} end
          e.trace.short_src = e.trace.short_src or (e.name and tostring(e.name)) or '?'
          e.trace.currentline = e.trace.currentline or 0
        end
      end
    end
    return nil, true
  end, { priority = 1 })

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
