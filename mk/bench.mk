# `make bench` (issue 6): lua-smtp against smtp-source, Python smtplib,
# LuaSocket and curl on loopback; writes bench/RESULTS.md. Not a test.
# bench-deps installs what only the benchmark needs, so `make test` stays
# lean. Knobs: BENCH_ROUNDS, BENCH_S1, BENCH_S2, BENCH_S3_MB, ... (see
# bench/run.lua). `make bench-profile` samples lua-smtp's S1 loop with perf.
# S7's mbedTLS 3.6 rows and S8 (issue 16) use build/mbedtls36, built here
# from the pinned tarball (mk/mbedtls36.mk); without it they are skipped.

BENCH_PACKAGES = postfix stunnel4 curl strace lua-socket time openssl python3 linux-perf

.PHONY: bench bench-deps bench-profile bench-mbedtls36

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "bench-deps: installing$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing \
	  || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }; \
	fi

BENCH_BUILD36 = build/mbedtls36
BENCH_NO36 = SKIPPED: mbedTLS 3.6 tarball not found ($(MBEDTLS36_TARBALL))

# Builds the 3.6 module when the pinned tarball is here; says SKIPPED
# otherwise (as test-mbedtls36 does). A target of its own, so that
# `make -n bench` runs no benchmark.
bench-mbedtls36:
	@if [ -f '$(MBEDTLS36_TARBALL)' ]; then \
	  $(MAKE) --no-print-directory MBEDTLS=3.6 LUA=lua5.4 BUILD=$(BENCH_BUILD36) all; \
	else echo "bench: S8 and S7's mbedTLS 3.6 rows $(BENCH_NO36)"; fi

bench: bench-deps $(MODULE) bench-mbedtls36
	BENCH_BUILD36='$(BENCH_BUILD36)' $(if $(wildcard $(MBEDTLS36_TARBALL)),,BENCH_NO36='$(BENCH_NO36)') \
	  lua5.4 bench/run.lua $(BUILD)

bench-profile: bench-deps $(MODULE)
	lua5.4 bench/profile.lua $(BUILD)
