-- CPU cost comparisons for the linear-time specs: a ratio of CPU times
-- between a small and a large input, never a fixed time (a busy machine
-- slows both sides alike).
local M = {}

-- CPU seconds per call of fn(input), repeated until the total reaches
-- 'min_seconds' (bounded by 'max_calls').
-- The collector is stopped while measuring: a collection is paid by
-- whichever call happens to trigger it, and its cost depends on the whole
-- heap (busted's included), not on the input, which skewed ratios under
-- valgrind. Memory stays bounded by max_calls copies of the input.
function M.per_call(fn, input, min_seconds, max_calls)
  collectgarbage("collect")
  collectgarbage("stop")
  local calls, t0 = 0, os.clock()
  repeat
    fn(input)
    calls = calls + 1
  until os.clock() - t0 > min_seconds or calls >= max_calls
  local per = (os.clock() - t0) / calls
  collectgarbage("restart")
  return per
end

-- cost(fn, make(large)) / cost(fn, make(small)), after one warm-up call.
function M.ratio(fn, make, small, large, min_seconds, max_calls)
  fn(make(small))
  return M.per_call(fn, make(large), min_seconds, max_calls) / M.per_call(fn, make(small), min_seconds, max_calls)
end

return M
