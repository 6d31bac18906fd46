# Sanitizers and fuzzing (issue 8, SPEC section 7). Included by the Makefile.
#   make fuzz [FUZZ=reply] [FUZZ_SECONDS=N]  libFuzzer, each target in turn
#   make fuzz-smoke                          each target 30 s, fails on a crash
#   make check-asan                          whole suite, module under ASan+UBSan
#   make check-valgrind                      unit, dialogue and loop specs under memcheck
# fuzz/fuzz_X.c links csrc/X.c when it exists (Lua-free sources only);
# fuzz/fuzz_address.c embeds liblua5.4 to drive lua/smtp/address.lua.

.PHONY: fuzz fuzz-build fuzz-smoke check-asan check-valgrind asan-build valgrind-build \
        _asan-suite

SAN_CC ?= clang
FUZZ_DIR ?= build/fuzzers
# 0 runs until interrupted (libFuzzer's -max_total_time=0).
FUZZ_SECONDS ?= 0
FUZZ_ALL = $(patsubst fuzz/fuzz_%.c,%,$(sort $(wildcard fuzz/fuzz_*.c)))
FUZZ ?= $(FUZZ_ALL)
FUZZ_FLAGS = -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
             -fno-omit-frame-pointer $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L \
             -D_DEFAULT_SOURCE $(MBEDTLS_CFLAGS) $(LUA_CFLAGS) $(GSASL_CFLAGS) $(IDN2_CFLAGS)
LUA_LIBS ?= $(shell pkg-config --libs $(LUA_PC) 2>/dev/null || echo -llua5.4)
# Extra sources and libraries per target, beyond csrc/<name>.c. The
# address target links the whole module, preloaded as smtp.core.
FUZZ_LIBS_address = $(SRCS) $(LIBS) $(LUA_LIBS)
FUZZ_LIBS_dkim = $(MBEDTLS_LIBS)
FUZZ_BINS = $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ))

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c $(HDRS) $(SRCS) $(if $(filter vendored,$(MBEDTLS)),$(MBEDTLS_LIB))
	@mkdir -p $(dir $@)
	@echo "  FUZZ-CC $@"
	@$(SAN_CC) $(FUZZ_FLAGS) -o $@ $< $(wildcard csrc/$*.c) $(FUZZ_LIBS_$*)

fuzz-build: $(FUZZ_BINS)

# The committed seeds in fuzz/corpus/<name> are read only; what libFuzzer
# learns goes to $(FUZZ_DIR)/corpus/<name>, crashes to $(FUZZ_DIR)/artifacts.
# Each run's log is $(FUZZ_DIR)/<name>.log; its "#N DONE cov: X ft: Y"
# line is printed at the end.
FUZZ_RUN = for t in $(FUZZ); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	  echo "  FUZZ $$t for $(1) s"; \
	  ASAN_OPTIONS=detect_leaks=1 $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(1) \
	    -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	    $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t >$(FUZZ_DIR)/$$t.log 2>&1; \
	  rc=$$?; \
	  if [ $$rc -ne 0 ] || grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|property failed|deadly signal' $(FUZZ_DIR)/$$t.log; then \
	    tail -n 60 $(FUZZ_DIR)/$$t.log; echo "FUZZ $$t FAILED (exit $$rc), log $(FUZZ_DIR)/$$t.log"; fail=1; \
	  fi; \
	  grep -E '^\#[0-9]+[[:space:]]+DONE' $(FUZZ_DIR)/$$t.log | sed "s/^/  $$t: /"; \
	done; [ -z "$$fail" ]

fuzz: fuzz-build
	@fail=; $(call FUZZ_RUN,$(FUZZ_SECONDS))

# 30 s a target keeps .ci/run under its 45 minutes with the 2.28 suite;
# `make fuzz FUZZ_SECONDS=N` is the long run.
fuzz-smoke: fuzz-build
	@fail=; $(call FUZZ_RUN,30)

# --- ASan + UBSan over the whole busted suite --------------------------
# The module is built with clang into build/asan; lua5.4 itself is not
# instrumented, so the ASan runtime must be preloaded (it must come first).
# A lua5.4 wrapper put first on PATH preloads it together with
# tools/unset-preload.c, which takes LD_PRELOAD out of the environment
# again: every lua5.4 (busted's re-exec under --lua, the examples and
# bin/ scripts the specs start) runs under ASan, the Python and Postfix
# servers the specs spawn do not (ASan makes Python start 2 s slower).
ASAN_BUILD ?= build/asan
ASAN_SAN = -fsanitize=address,undefined -fno-omit-frame-pointer
ASAN_RT = $(shell $(SAN_CC) -print-file-name=libclang_rt.asan-$(shell uname -m).so)
ASAN_LUA = $(shell command -v $(LUA))
# A Lua "prefix" whose bin/lua5.4 is the wrapper.
ASAN_PREFIX = $(ASAN_BUILD)/lua-prefix
ASAN_OPTS = ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:exitcode=86 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_RUN ?= all

# A phony step, not a rule for $(ASAN_BUILD)/smtp/core.so: that file is
# $(MODULE) in the sub-make, and a second rule for it would recurse.
asan-build:
	@test -f '$(ASAN_RT)' || { echo "no ASan runtime at $(ASAN_RT) (install libclang-rt-14-dev)"; exit 1; }
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=$(SAN_CC) OPT='-O1 -g' \
	  EXTRA_CFLAGS='$(ASAN_SAN)' EXTRA_LDFLAGS='$(ASAN_SAN) -shared-libasan' all
	@$(SAN_CC) -shared -fPIC -O1 -o $(ASAN_BUILD)/unset-preload.so tools/unset-preload.c
	@mkdir -p $(ASAN_PREFIX)/bin
	@printf '#!/bin/sh\nLD_PRELOAD="%s %s" exec %s "$$@"\n' '$(ASAN_RT)' \
	  '$(CURDIR)/$(ASAN_BUILD)/unset-preload.so' '$(ASAN_LUA)' >$(ASAN_PREFIX)/bin/$(LUA)
	@chmod +x $(ASAN_PREFIX)/bin/$(LUA)
	@# luarocks (rockspec_spec) takes the first lua5.4 on PATH as the Lua
	@# prefix and looks for lua.h beside it.
	@ln -sfn $(dir $(ASAN_LUA))../include $(ASAN_PREFIX)/include
	@ln -sfn $(dir $(ASAN_LUA))../lib $(ASAN_PREFIX)/lib

check-asan: asan-build
	@echo "  ASAN busted --run=$(ASAN_RUN) (log $(ASAN_BUILD)/check-asan.log)"
	@( $(MAKE) --no-print-directory -s BUILD=$(ASAN_BUILD) _asan-suite; echo $$? >$(ASAN_BUILD)/check-asan.rc ) 2>&1 \
	  | tee $(ASAN_BUILD)/check-asan.log
	@rc=$$(cat $(ASAN_BUILD)/check-asan.rc); \
	if grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' $(ASAN_BUILD)/check-asan.log; then \
	  echo "check-asan: sanitizer report in $(ASAN_BUILD)/check-asan.log"; exit 1; fi; \
	if [ "$$rc" -ne 0 ]; then echo "check-asan: suite failed (exit $$rc)"; exit 1; fi; \
	echo "check-asan: clean"

# Runs with BUILD=$(ASAN_BUILD), so TEST_ENV points the suite at it.
_asan-suite:
	PATH='$(CURDIR)/$(ASAN_PREFIX)/bin':"$$PATH" $(TEST_ENV) $(ASAN_OPTS) $(BUSTED) --run=$(ASAN_RUN)

# --- valgrind memcheck over the unit, dialogue and event-loop specs -----
# busted re-execs itself when given --lua (the .busted file sets it);
# --ignore-lua keeps it in the lua5.4 process valgrind started. Child
# processes (scripted servers) are not traced.
VALGRIND_BUILD ?= build/valgrind
VALGRIND_RUNS ?= unit dialogue loops
TEST_ENV_VG = SMTP_BUILD='$(VALGRIND_BUILD)' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' \
	LUA_CPATH='$(VALGRIND_BUILD)/?.so;;'
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite \
	--suppressions=spec/helpers/valgrind.supp --num-callers=30
BUSTED_SCRIPT ?= $(shell command -v busted)

valgrind-build:
	@$(MAKE) --no-print-directory BUILD=$(VALGRIND_BUILD) OPT='-O1 -g' all

# Fails on memcheck's verdict (exit 99, any "==PID==" report) and on any
# spec failure: the timing specs hold under memcheck too (the fault
# matrix overshoots its deadlines by 0.07 s at most there). VALGRIND_STRICT=0
# lists spec failures without failing, to look at memcheck alone.
VALGRIND_STRICT ?= 1
check-valgrind: valgrind-build
	@mkdir -p $(VALGRIND_BUILD)
	@fail=; for r in $(VALGRIND_RUNS); do \
	  echo "  VALGRIND busted --run=$$r (log $(VALGRIND_BUILD)/$$r.log)"; \
	  $(TEST_ENV_VG) $(VALGRIND) $(LUA) $(BUSTED_SCRIPT) --ignore-lua --run=$$r \
	    >$(VALGRIND_BUILD)/$$r.log 2>&1; rc=$$?; \
	  grep -E 'passed, [0-9]+ failed' $(VALGRIND_BUILD)/$$r.log | tail -n 1; \
	  if [ $$rc -eq 99 ] || grep -Eq '^==[0-9]+== [A-Z]' $(VALGRIND_BUILD)/$$r.log; then \
	    grep -E '^==[0-9]+==' $(VALGRIND_BUILD)/$$r.log | head -n 80; \
	    echo "check-valgrind: memcheck errors in $$r"; fail=1; \
	  elif [ $$rc -ne 0 ]; then \
	    grep -E '^\[  FAILED  \] spec/.*ms\)$$' $(VALGRIND_BUILD)/$$r.log; \
	    echo "check-valgrind: $$r: spec failures under valgrind, no memcheck errors"; \
	    [ "$(VALGRIND_STRICT)" = 1 ] && fail=1; \
	  fi; \
	done; [ -z "$$fail" ] && echo "check-valgrind: no memcheck errors, no definite leaks"
