# lua-smtp build, test and tooling. `make` builds build/smtp/core.so;
# `make test` runs the whole busted suite under lua5.4, lua5.3, lua5.1 and
# LuaJIT; `make demo` sends a real message.

LUA ?= lua5.4
LUA_PC ?= $(LUA)
LUA_CFLAGS ?= $(shell pkg-config --cflags $(LUA_PC) 2>/dev/null)
GSASL_CFLAGS ?= $(shell pkg-config --cflags libgsasl 2>/dev/null)
GSASL_LIBS ?= $(shell pkg-config --libs libgsasl 2>/dev/null || echo -lgsasl)
# libidn2 (IDNA2008 / UTS 46) turns internationalised domains into A-labels.
IDN2_CFLAGS ?= $(shell pkg-config --cflags libidn2 2>/dev/null)
IDN2_LIBS ?= $(shell pkg-config --libs libidn2 2>/dev/null || echo -lidn2)
# Which mbedTLS (mk/mbedtls.mk): the vendored 3.6 (default) or the system
# 2.28 (MBEDTLS=system); 3.6 and 2.28 are the old names of the two.
MBEDTLS ?= vendored
override MBEDTLS := $(patsubst 3.6,vendored,$(patsubst 2.28,system,$(MBEDTLS)))

CC ?= cc
WARN = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-qual \
       -Wstrict-prototypes -Wmissing-prototypes -Wwrite-strings -Wundef \
       -Wdeclaration-after-statement -Wno-unused-parameter
OPT ?= -O2 -g
CFLAGS_ALL = $(OPT) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
             -fPIC -fvisibility=hidden $(MBEDTLS_CFLAGS) $(LUA_CFLAGS) $(GSASL_CFLAGS) $(IDN2_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = -shared $(EXTRA_LDFLAGS)
LIBS = $(MBEDTLS_LIBS) $(GSASL_LIBS) $(IDN2_LIBS) -pthread

# The one list of our C sources; with the vendored mbedTLS sources
# (mk/mbedtls.mk, `make print-srcs`) spec/unit/build_spec.lua checks that
# the rockspec names the same files.
SRCS = $(sort $(wildcard csrc/*.c))
# Objects do not record which Lua they were built for: another Lua gets
# its own directory (build/lua5.1, ...), lua5.4 keeps build/. Nor which
# mbedTLS: MBEDTLS=system builds under build/system.
BUILD_ROOT = $(if $(filter system,$(MBEDTLS)),build/system,build)
BUILD ?= $(if $(filter lua5.4,$(LUA)),$(BUILD_ROOT),$(BUILD_ROOT)/$(LUA))
OBJS = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(SRCS))
HDRS = $(wildcard csrc/*.h)
MODULE = $(BUILD)/smtp/core.so

BUSTED ?= busted --lua=$(LUA)
TEST_ENV = SMTP_BUILD='$(BUILD)' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='$(BUILD)/?.so;;'

.PHONY: all deps test test-unit test-dialogue test-interop lint demo install clean check-rockspec

all: $(MODULE)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS_ALL) -c $< -o $@

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $(OBJS) $(LIBS)

deps:
	sh tools/install-deps.sh
	sh tools/install-node-deps.sh

# The whole suite under every supported Lua (mk/lua-versions.mk), ending
# with one line summed over the runs; `make test-lua5.4` runs one.
test: deps
	@$(MAKE) --no-print-directory test-all-luas

test-unit: all
	$(TEST_ENV) $(BUSTED) --run=unit

test-dialogue: all
	$(TEST_ENV) $(BUSTED) --run=dialogue

test-interop: all
	$(TEST_ENV) $(BUSTED) --run=interop

lint:
	luacheck -q lua spec bench bin/smtp-send examples tools
	$(MAKE) -s clean-obj && $(MAKE) -s CC=gcc BUILD=build/lint-gcc all
	$(MAKE) -s CC=clang BUILD=build/lint-clang all
	@# compat.h paths for the other Luas, -Werror under clang too
	for l in lua5.3 lua5.1 luajit; do $(MAKE) -s CC=clang LUA=$$l BUILD=build/lint-clang-$$l all || exit 1; done
	@# the same sources against the system mbedTLS 2.28 (mk/mbedtls.mk)
	$(MAKE) -s lint-mbedtls-system

demo: deps all
	sh tools/demo.sh

# luarocks' Lua version for LUA (LuaJIT uses the 5.1 tree).
LUA_ABI ?= $(if $(filter luajit,$(LUA)),5.1,$(patsubst lua%,%,$(LUA)))

install:
	luarocks --lua-version=$(LUA_ABI) make rockspec/lua-smtp-scm-1.rockspec

check-rockspec:
	sh tools/check-rockspec.sh

clean-obj:
	rm -rf build/lint-gcc build/lint-clang build/lint-clang-* build/lint-system-*

clean:
	rm -rf $(BUILD)

# Further targets (sanitizers, fuzzing, benchmarks, other Lua versions)
# live in mk/*.mk, one file per concern.
-include $(sort $(wildcard mk/*.mk))
