# `make bench` (issue 6): lua-smtp against smtp-source, Python smtplib,
# LuaSocket and curl on loopback; writes bench/RESULTS.md. Not a test.
# bench-deps installs what only the benchmark needs, so `make test` stays
# lean. Knobs: BENCH_ROUNDS, BENCH_S1, BENCH_S2, BENCH_S3_MB, ... (see
# bench/run.lua). `make bench-profile` samples lua-smtp's S1 loop with perf.

BENCH_PACKAGES = postfix stunnel4 curl strace lua-socket time openssl python3 linux-perf

.PHONY: bench bench-deps bench-profile

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	fi

bench: bench-deps $(MODULE)
	lua5.4 bench/run.lua $(BUILD)

bench-profile: bench-deps $(MODULE)
	lua5.4 bench/profile.lua $(BUILD)
