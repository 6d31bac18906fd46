# `make bench` (issue 6): lua-smtp against smtp-source, Python smtplib,
# LuaSocket and curl on loopback; writes bench/RESULTS.md. Not a test.
# bench-deps installs what only the benchmark needs, so `make test` stays
# lean. Knobs: BENCH_ROUNDS, BENCH_S1, BENCH_S2, BENCH_S3_MB, ... (see
# bench/run.lua). `make bench-profile` samples lua-smtp's S1 loop with perf.
# The default build links the vendored mbedTLS 3.6; the 2.28 rows of S7,
# S8 and S10 (issue 26) use build/system (make MBEDTLS=system), built here.

BENCH_PACKAGES = postfix stunnel4 curl strace lua-socket lua-sec time openssl python3 linux-perf

.PHONY: bench bench-deps bench-profile bench-mbedtls-system

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	fi

BENCH_BUILD_SYSTEM = build/system

# A target of its own, so that `make -n bench` runs no benchmark.
bench-mbedtls-system:
	@$(MAKE) --no-print-directory MBEDTLS=system LUA=lua5.4 BUILD=$(BENCH_BUILD_SYSTEM) all

bench: bench-deps $(MODULE) bench-mbedtls-system build-luajit
	BENCH_BUILD_SYSTEM='$(BENCH_BUILD_SYSTEM)' lua5.4 bench/run.lua $(BUILD)

bench-profile: bench-deps $(MODULE)
	lua5.4 bench/profile.lua $(BUILD)
