# `make bench-memory` (issue 5): peak RSS and MB/s of sending a message
# with a 1 GiB attachment (plain, then DKIM-signed) to a discarding
# loopback sink, under /usr/bin/time -v. Not a test. Knobs: BENCH_MEM_MB,
# BENCH_MEM_RANDOM=1, BENCH_MEM_LIMIT_MB (see bench/big_attachment.lua).

.PHONY: bench-memory

bench-memory: $(MODULE)
	@command -v /usr/bin/time >/dev/null || { echo "bench-memory needs /usr/bin/time (Debian package time)"; exit 1; }
	lua5.4 bench/big_attachment.lua $(BUILD)
