# mbedTLS 3.6 LTS next to the system 2.28 (issue 16). Included by the Makefile.
#   make MBEDTLS=3.6           build/mbedtls36/smtp/core.so, linked statically
#                              against the pinned 3.6 (TLS 1.3 enabled)
#   make mbedtls36-lib         unpack and build only the pinned library
#   make test-mbedtls36        that build, whole suite under lua5.4
#                              (MBEDTLS36_RUN picks the busted task)
#   make lint-mbedtls36        that build under gcc and clang, -Werror
#   make check-memory-mbedtls36  TLS/SASL specs under ASan+UBSan and valgrind
# Without MBEDTLS (or MBEDTLS=2.28) everything uses the system library.
# The tarball holds the library sources only (no tests, no programs, no
# generator scripts): only the three static libraries are built, with
# the generated sources it ships taken as they are.

MBEDTLS36_VERSION = 3.6.6
# The pinned source: MBEDTLS36_TARBALL when given, else the project's
# shared vendor directory next to the checkout, else /work/shared/vendor.
MBEDTLS36_NAME = mbedtls-$(MBEDTLS36_VERSION).tar.gz
MBEDTLS36_TARBALL ?= $(firstword $(wildcard $(CURDIR)/../shared/vendor/$(MBEDTLS36_NAME) \
                       /work/shared/vendor/$(MBEDTLS36_NAME)) \
                       /work/shared/vendor/$(MBEDTLS36_NAME))
MBEDTLS36_SHA256 = d187c60cfb6760890418c64ebe001e9a8e75cad0e520d1eb20dec43f34917a66
MBEDTLS36_DIR = build/mbedtls-$(MBEDTLS36_VERSION)
MBEDTLS36_LIBDIR = $(MBEDTLS36_DIR)/library
# Link order: each library needs the ones after it.
MBEDTLS36_A = $(MBEDTLS36_LIBDIR)/libmbedtls.a $(MBEDTLS36_LIBDIR)/libmbedx509.a \
              $(MBEDTLS36_LIBDIR)/libmbedcrypto.a
MBEDTLS36_CC ?= cc
MBEDTLS36_JOBS ?= 2
MBEDTLS36_RUN ?= all
# Generated sources shipped in the tarball; their generators are not.
MBEDTLS36_GENERATED = error.c version_features.c ssl_debug_helpers_generated.c \
                      psa_crypto_driver_wrappers.h psa_crypto_driver_wrappers_no_static.c

ifneq ($(filter-out 2.28 3.6,$(MBEDTLS)),)
$(error MBEDTLS must be 2.28 (the system library, default) or 3.6, not '$(MBEDTLS)')
endif

ifeq ($(MBEDTLS),3.6)
# -I comes before /usr/include, so the 3.6 headers win over the system 2.28
# ones; full archive paths keep -lmbedtls (2.28) out of the link.
MBEDTLS_CFLAGS = -I$(MBEDTLS36_DIR)/include
MBEDTLS_LIBS = $(MBEDTLS36_A)
# Objects include the 3.6 headers: the library must be unpacked first.
$(OBJS): $(MBEDTLS36_DIR)/.built
$(MODULE): $(MBEDTLS36_DIR)/.built
endif

.PHONY: mbedtls36-lib test-mbedtls36 _test-mbedtls36 lint-mbedtls36 check-memory-mbedtls36

mbedtls36-lib: $(MBEDTLS36_DIR)/.built

$(MBEDTLS36_DIR)/.unpacked:
	@echo "  UNPACK $(MBEDTLS36_TARBALL)"
	@echo "$(MBEDTLS36_SHA256)  $(MBEDTLS36_TARBALL)" | sha256sum -c --quiet - \
	  || { echo "$(MBEDTLS36_TARBALL): sha256 is not $(MBEDTLS36_SHA256)"; exit 1; }
	@rm -rf $(MBEDTLS36_DIR) $(MBEDTLS36_DIR).tmp
	@mkdir -p $(MBEDTLS36_DIR).tmp
	@tar -xzf $(MBEDTLS36_TARBALL) -C $(MBEDTLS36_DIR).tmp --strip-components=1
	@mv $(MBEDTLS36_DIR).tmp $(MBEDTLS36_DIR)
	@touch $@

# -o: the generated sources are never remade (their scripts are missing).
# The library's `static` target also writes ../tests/seedfile, which does
# not exist here: name the three archives instead.
$(MBEDTLS36_DIR)/.built: $(MBEDTLS36_DIR)/.unpacked
	@echo "  BUILD mbedTLS $(MBEDTLS36_VERSION) (static, -fPIC)"
	@t0=$$(date +%s); \
	$(MAKE) -s --no-print-directory -C $(MBEDTLS36_LIBDIR) -j$(MBEDTLS36_JOBS) \
	  CC='$(MBEDTLS36_CC)' CFLAGS='-O2 -fPIC' \
	  $(addprefix -o ,$(MBEDTLS36_GENERATED)) \
	  libmbedcrypto.a libmbedx509.a libmbedtls.a >$(MBEDTLS36_DIR)/build.log 2>&1 \
	  || { tail -n 30 $(MBEDTLS36_DIR)/build.log; exit 1; }; \
	echo "  mbedTLS $(MBEDTLS36_VERSION) built in $$(( $$(date +%s) - t0 )) s"
	@touch $@

TEST36_ENV = SMTP_BUILD='build/mbedtls36' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' \
             LUA_CPATH='build/mbedtls36/?.so;;'

# Without the pinned tarball on this machine the step says so and passes:
# the 2.28 suite still runs (make test), the 3.6 one cannot.
test-mbedtls36:
	@if [ ! -f '$(MBEDTLS36_TARBALL)' ]; then \
	  echo "test-mbedtls36: SKIPPED: $(MBEDTLS36_NAME) not found ($(MBEDTLS36_TARBALL));" \
	    "set MBEDTLS36_TARBALL to run the suite against mbedTLS 3.6"; exit 0; fi; \
	$(MAKE) --no-print-directory MBEDTLS=3.6 LUA=lua5.4 BUILD=build/mbedtls36 all && \
	$(MAKE) --no-print-directory _test-mbedtls36

_test-mbedtls36:
	@echo "== lua5.4, mbedTLS $(MBEDTLS36_VERSION) =="
	@$(TEST36_ENV) busted --lua=lua5.4 --run=$(MBEDTLS36_RUN)

# ASan+UBSan and valgrind memcheck over the TLS and SASL specs (busted
# task "tls") with the module linked against 3.6: its TLS 1.3, ticket
# and exporter paths run only there.
check-memory-mbedtls36:
	@if [ ! -f '$(MBEDTLS36_TARBALL)' ]; then \
	  echo "check-memory-mbedtls36: SKIPPED: $(MBEDTLS36_NAME) not found ($(MBEDTLS36_TARBALL))"; exit 0; fi; \
	$(MAKE) --no-print-directory MBEDTLS=3.6 ASAN_BUILD=build/asan-mbedtls36 ASAN_RUN=tls check-asan && \
	$(MAKE) --no-print-directory MBEDTLS=3.6 VALGRIND_BUILD=build/valgrind-mbedtls36 VALGRIND_RUNS=tls check-valgrind

lint-mbedtls36:
	@if [ ! -f '$(MBEDTLS36_TARBALL)' ]; then \
	  echo "lint-mbedtls36: SKIPPED: $(MBEDTLS36_NAME) not found ($(MBEDTLS36_TARBALL))"; exit 0; fi; \
	$(MAKE) -s MBEDTLS=3.6 CC=gcc BUILD=build/lint-mbedtls36-gcc all && \
	$(MAKE) -s MBEDTLS=3.6 CC=clang BUILD=build/lint-mbedtls36-clang all
