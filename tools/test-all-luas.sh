#!/bin/sh
# Runs the busted suite under each Lua given (issue 7: lua5.4, lua5.3,
# lua5.1, luajit), JOBS at a time, each with its own build/<lua> and log
# build/<lua>/test.log. Prints each Lua's summary (and the whole log of a
# Lua that failed), then one line summed over all runs:
#   N passed, N failed, N skipped
# Exits nonzero when any test failed or a run ended without a summary.
# usage: tools/test-all-luas.sh [-j JOBS] [-r RUN] lua...
#   RUN is the busted task (all, unit, dialogue, interop).
set -u

jobs=2
run=all
while [ $# -gt 0 ]; do
  case "$1" in
    -j) jobs=$2; shift 2 ;;
    -r) run=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [-j JOBS] [-r RUN] lua..." >&2; exit 2; }
case "$jobs" in ''|*[!0-9]*|0) echo "$0: -j wants a positive number" >&2; exit 2 ;; esac

start=$(date +%s)

# One Lua: its suite with its build, output to its log, status in a file.
one() {
  l=$1
  mkdir -p "build/$l"
  log="build/$l/test.log"
  begin=$(date +%s)
  # nginx_spec loads build/luajit (built before) instead of running make
  # in parallel with the other runs.
  SMTP_NGINX_BUILD=build/luajit SMTP_HAPROXY_BUILD=build/lua5.3 SMTP_BUILD="build/$l" LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH="build/$l/?.so;;" \
    busted --lua="$l" --run="$run" >"$log" 2>&1
  echo "$? $(( $(date +%s) - begin ))" >"build/$l/test.status"
}

# At most $jobs runs at once: start a batch, wait for it (bounded by the
# suites' own timeouts), then the next batch.
set -- "$@"
all="$*"
while [ $# -gt 0 ]; do
  pids=""
  n=0
  while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do
    rm -f "build/$1/test.status"
    echo "== $1: running (log build/$1/test.log)"
    one "$1" &
    pids="$pids $!"
    n=$((n + 1))
    shift
  done
  for p in $pids; do wait "$p"; done
done

passed=0 failed=0 skipped=0 bad=""
for l in $all; do
  log="build/$l/test.log"
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" 2>/dev/null | tail -n 1)
  read -r status secs <"build/$l/test.status" 2>/dev/null || { status=1; secs=?; }
  if [ -z "$summary" ]; then
    echo "== $l: no summary line (exit $status, ${secs}s); its log:"
    cat "$log"
    bad="$bad $l"
    continue
  fi
  set -- $summary
  passed=$((passed + $1)) failed=$((failed + $3)) skipped=$((skipped + $5))
  if [ "$3" -ne 0 ] || [ "$status" -ne 0 ]; then
    echo "== $l: failed (exit $status); its log:"
    cat "$log"
    bad="$bad $l"
  fi
  echo "== $l: $summary (${secs}s)"
done

echo "== all Luas ($all) in $(( $(date +%s) - start ))s, $jobs at a time${bad:+; failed under:$bad}"
echo "$passed passed, $failed failed, $skipped skipped"
[ -z "$bad" ] && [ "$failed" -eq 0 ]
