-- `make bench-memory` (issue 5): builds smtp.message{attachments={{path=}}}
-- around a 1 GiB file and sends it to a discarding loopback sink
-- (bench/tools/fastsink.c), once plain and once DKIM-signed (two passes
-- over the file), each run under /usr/bin/time -v in its own process.
-- Prints peak RSS (must stay under 64 MiB: the attachment is streamed,
-- never held) and MB/s of message bytes. Not a test.
-- Run from the repository root: lua5.4 bench/big_attachment.lua <build dir>.
-- Environment: BENCH_MEM_MB (1024), BENCH_MEM_RANDOM=1 (random content
-- instead of a sparse file: slower to create, same work for the client),
-- BENCH_MEM_LIMIT_MB (64).
-- Internal mode: big_attachment.lua <build dir> --send <port> <file> <key|->
local BUILD = arg[1] or os.getenv("SMTP_BUILD") or "build"
package.path = "lua/?.lua;lua/?/init.lua;spec/?.lua;" .. package.path
package.cpath = BUILD .. "/?.so;" .. package.cpath

if arg[2] == "--send" then
  -- The measured process: nothing but the library and the send.
  local smtp = require "smtp"
  local core = require "smtp.core"
  local port, file, key = tonumber(arg[3]), arg[4], arg[5]
  local t0 = core.now()
  local msg = smtp.message {
    from = "bench@example.test", to = "sink@example.test", subject = "1 GiB attachment",
    text = "See the attachment.\n", attachments = { { path = file, filename = "big.bin" } },
    dkim = key ~= "-" and { domain = "example.test", selector = "bench", key_file = key } or nil,
  }
  local size = msg:requirements().size -- with DKIM: pass 1 (body hash) runs here
  local t1 = core.now()
  local report = smtp.send { host = "127.0.0.1", port = port, timeout = 600, mechanisms = {}, message = msg }
  local t2 = core.now()
  assert(report.reply.code == 250, "sink refused the message")
  print(("RESULT size=%d hash_s=%.3f send_s=%.3f total_s=%.3f"):format(size, t1 - t0, t2 - t1, t2 - t0))
  os.exit(0)
end

local P = require "helpers.proc"
local q = P.q
local MB = tonumber(os.getenv("BENCH_MEM_MB") or "") or 1024
local LIMIT_MB = tonumber(os.getenv("BENCH_MEM_LIMIT_MB") or "") or 64
local work = P.tempdir("bench-memory") -- removed with P.basedir() when this process exits

local file = work .. "/big.bin"
if os.getenv("BENCH_MEM_RANDOM") == "1" then
  P.run(("head -c %d /dev/urandom > %s"):format(MB * 1048576, q(file)))
else
  P.run(("truncate -s %d %s"):format(MB * 1048576, q(file)))
end
local key = work .. "/dkim.key"
P.run("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " .. q(key) .. " 2>/dev/null")

local exe = BUILD .. "/bench-memsink"
P.run(("cc -O2 -Wall -Wextra -std=c99 -o %s bench/tools/fastsink.c"):format(q(exe)))
local port, pid
for _ = 1, 3 do
  port = P.free_port()
  pid = P.spawn(("%s %d"):format(q(exe), port), work .. "/sink.log")
  P.watchdog("kill " .. pid, pid)
  if P.wait_for(10, function() return P.listening(port) or not P.alive(pid) end) and P.alive(pid) then break end
  P.terminate(pid, 2)
  pid = nil
end
assert(pid, "fastsink did not start: " .. (P.read_file(work .. "/sink.log") or ""))

local function run(label, keyfile)
  local out = P.run(("/usr/bin/time -v lua5.4 bench/big_attachment.lua %s --send %d %s %s"):format(
    q(BUILD), port, q(file), keyfile and q(keyfile) or "-"))
  local size, hash_s, send_s, total_s = out:match("RESULT size=(%d+) hash_s=([%d.]+) send_s=([%d.]+) total_s=([%d.]+)")
  local rss = tonumber(out:match("Maximum resident set size %(kbytes%): (%d+)"))
  -- CPU seconds of the client: steadier than wall time on a shared machine.
  local cpu = tonumber(out:match("User time %(seconds%): ([%d.]+)"))
    + tonumber(out:match("System time %(seconds%): ([%d.]+)"))
  assert(size and rss, "unexpected output:\n" .. out)
  size, hash_s, send_s, total_s = tonumber(size), tonumber(hash_s), tonumber(send_s), tonumber(total_s)
  local mbs = size / 1e6 / send_s
  print(("%-16s message %7.1f MiB  peak RSS %5.1f MiB  send %5.1f s = %6.1f MB/s  client CPU %5.1f s%s")
    :format(label, size / 1048576, rss / 1024, send_s, mbs, cpu,
    keyfile and ("\n%16s (+ DKIM pass 1 %.1f s = %.1f MB/s; overall %.1f MB/s)"):format("", hash_s,
      size / 1e6 / hash_s, size / 1e6 / total_s) or ""))
  return rss / 1024
end

print(("bench-memory: %d MiB %s attachment (base64 on the wire), lua-smtp -> fastsink on 127.0.0.1:%d")
  :format(MB, os.getenv("BENCH_MEM_RANDOM") == "1" and "random" or "sparse", port))
local worst = math.max(run("plain", nil), run("DKIM rsa-sha256", key))
P.terminate(pid, 2)
P.run("rm -rf " .. q(work))
if worst >= LIMIT_MB then
  print(("FAIL: peak RSS %.1f MiB is not under %d MiB"):format(worst, LIMIT_MB))
  os.exit(1)
end
print(("ok: peak RSS %.1f MiB < %d MiB"):format(worst, LIMIT_MB))
