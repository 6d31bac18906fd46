# mbedTLS (issues 16, 26). Included by the Makefile.
#   make                       links the vendored mbedTLS 3.6 LTS (vendor/mbedtls)
#                              statically, built with our configuration
#                              vendor/config/smtp_mbedtls_config.h: TLS 1.3 and 1.2
#   make MBEDTLS=system        links Debian's mbedTLS 2.28 (TLS 1.2) instead,
#                              under build/system (build/system/<lua> for other Luas)
#   make mbedtls-lib           only the vendored library (one archive per compiler)
#   make test-mbedtls-system   the whole suite under lua5.4 against the system build
#   make check-memory-mbedtls-system  its TLS/SASL specs under ASan+UBSan and valgrind
#   make lint-mbedtls-system   the system build under gcc and clang, -Werror
#   make vendor-mbedtls TARBALL=path SHA256=hex   replaces vendor/mbedtls with
#                              another release (the tarball's sha256 must match)
#   make print-srcs            every C source of the module (the rockspec's list)
# Old names still work: MBEDTLS=3.6 is the default, MBEDTLS=2.28 is system.

# MBEDTLS itself is set (and old names mapped) at the top of the Makefile.
ifneq ($(filter-out vendored system,$(MBEDTLS)),)
$(error MBEDTLS must be vendored (the default, mbedTLS 3.6 in vendor/) or system (Debian's 2.28), not '$(MBEDTLS)')
endif

MBEDTLS_DIR = vendor/mbedtls
MBEDTLS_CONFIG = vendor/config/smtp_mbedtls_config.h
# The library's sources: everything in library/ (what the configuration
# leaves out compiles to nothing) and the third-party X25519 the
# configuration turns on (Everest; its joined file includes its others).
# p256-m stays vendored but unbuilt: measured slower (the config says why).
MBEDTLS_SRCS = $(sort $(wildcard $(MBEDTLS_DIR)/library/*.c)) \
  $(MBEDTLS_DIR)/3rdparty/everest/library/everest.c \
  $(MBEDTLS_DIR)/3rdparty/everest/library/x25519.c \
  $(MBEDTLS_DIR)/3rdparty/everest/library/Hacl_Curve25519_joined.c
# The same directories and define are in the rockspec.
MBEDTLS_INCDIRS = vendor/config $(MBEDTLS_DIR)/include $(MBEDTLS_DIR)/library \
  $(MBEDTLS_DIR)/3rdparty/everest/include $(MBEDTLS_DIR)/3rdparty/everest/include/everest \
  $(MBEDTLS_DIR)/3rdparty/everest/include/everest/kremlib
MBEDTLS_DEFINE = -DMBEDTLS_CONFIG_FILE='"smtp_mbedtls_config.h"'
# Objects depend on the compiler only (not on the Lua): one archive per CC,
# shared by every build directory. Not sanitizer-instrumented.
MBEDTLS_OBJDIR = build/mbedtls-lib/$(notdir $(CC))
MBEDTLS_OBJS = $(patsubst $(MBEDTLS_DIR)/%.c,$(MBEDTLS_OBJDIR)/%.o,$(MBEDTLS_SRCS))
MBEDTLS_LIB = $(MBEDTLS_OBJDIR)/libsmtp_mbedtls.a
MBEDTLS_OPT ?= -O2 -g
MBEDTLS_JOBS ?= 2
# Hidden symbols and one section per function: the module exports none of
# mbedTLS, and the linker drops what the client never calls.
MBEDTLS_LIB_CFLAGS = $(MBEDTLS_OPT) -std=c99 -fPIC -fvisibility=hidden -ffunction-sections \
  -fdata-sections $(MBEDTLS_DEFINE) $(addprefix -I,$(MBEDTLS_INCDIRS))

ifeq ($(MBEDTLS),vendored)
# -isystem: the library's headers are not held to our warning flags.
MBEDTLS_CFLAGS = $(MBEDTLS_DEFINE) -Ivendor/config \
  $(addprefix -isystem ,$(filter-out vendor/config $(MBEDTLS_DIR)/library,$(MBEDTLS_INCDIRS)))
MBEDTLS_LIBS = $(MBEDTLS_LIB) -Wl,--gc-sections
$(OBJS): $(MBEDTLS_CONFIG)
$(MODULE): $(MBEDTLS_LIB)
# Built once before the per-Lua sub-makes, which would otherwise race for it.
$(addprefix build-,$(LUAS)): $(MBEDTLS_LIB)
else
# Debian 12's mbedTLS 2.28 ships no .pc file; use one when it exists.
MBEDTLS_LIBS = $(shell pkg-config --libs mbedtls mbedx509 mbedcrypto 2>/dev/null \
                 || echo -lmbedtls -lmbedx509 -lmbedcrypto)
endif

.PHONY: mbedtls-lib _mbedtls-objs print-srcs print-mbedtls-srcs vendor-mbedtls \
        test-mbedtls-system _test-mbedtls-system check-memory-mbedtls-system \
        lint-mbedtls-system test-mbedtls36 check-memory-mbedtls36 lint-mbedtls36

mbedtls-lib: $(MBEDTLS_LIB)

$(MBEDTLS_OBJDIR)/%.o: $(MBEDTLS_DIR)/%.c $(MBEDTLS_CONFIG)
	@mkdir -p $(dir $@)
	@$(CC) $(MBEDTLS_LIB_CFLAGS) -c $< -o $@

_mbedtls-objs: $(MBEDTLS_OBJS)

$(MBEDTLS_LIB): $(MBEDTLS_SRCS) $(MBEDTLS_CONFIG)
	@echo "  BUILD mbedTLS $$(sed -n '1s/^mbedTLS //p' $(MBEDTLS_DIR)/VERSION) ($(notdir $(CC)), $(MBEDTLS_CONFIG))"
	@$(MAKE) -s --no-print-directory -j$(MBEDTLS_JOBS) _mbedtls-objs
	@rm -f $@
	@ar rcs $@ $(MBEDTLS_OBJS)

print-srcs:
	@echo $(SRCS) $(MBEDTLS_SRCS)

print-mbedtls-srcs:
	@echo $(MBEDTLS_SRCS)

vendor-mbedtls:
	@test -n '$(TARBALL)' -a -n '$(SHA256)' || { echo "usage: make vendor-mbedtls TARBALL=path SHA256=hex"; exit 2; }
	sh tools/vendor-mbedtls.sh '$(TARBALL)' '$(SHA256)'

SYSTEM_BUILD = build/system
TEST_SYSTEM_ENV = SMTP_BUILD='$(SYSTEM_BUILD)' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' \
                  LUA_CPATH='$(SYSTEM_BUILD)/?.so;;'
MBEDTLS_SYSTEM_RUN ?= all

test-mbedtls-system:
	@$(MAKE) --no-print-directory MBEDTLS=system LUA=lua5.4 all
	@$(MAKE) --no-print-directory _test-mbedtls-system

_test-mbedtls-system:
	@echo "== lua5.4, system mbedTLS 2.28 =="
	@$(TEST_SYSTEM_ENV) busted --lua=lua5.4 --run=$(MBEDTLS_SYSTEM_RUN)

# ASan+UBSan and valgrind memcheck over the TLS and SASL specs (busted
# task "tls") with the module linked against the system 2.28: its TLS 1.2
# paths (tls-unique, session IDs) are the default ones there.
check-memory-mbedtls-system:
	$(MAKE) --no-print-directory MBEDTLS=system ASAN_BUILD=build/asan-system ASAN_RUN=tls check-asan
	$(MAKE) --no-print-directory MBEDTLS=system VALGRIND_BUILD=build/valgrind-system VALGRIND_RUNS=tls check-valgrind

lint-mbedtls-system:
	$(MAKE) -s MBEDTLS=system CC=gcc BUILD=build/lint-system-gcc all
	$(MAKE) -s MBEDTLS=system CC=clang BUILD=build/lint-system-clang all

# Issue 16's names: the 3.6 build is the default one now.
test-mbedtls36:
	@$(MAKE) --no-print-directory test-lua5.4
check-memory-mbedtls36:
	@$(MAKE) --no-print-directory ASAN_BUILD=build/asan-36 ASAN_RUN=tls check-asan
	@$(MAKE) --no-print-directory VALGRIND_BUILD=build/valgrind-36 VALGRIND_RUNS=tls check-valgrind
lint-mbedtls36:
	@$(MAKE) --no-print-directory lint-mbedtls-system
