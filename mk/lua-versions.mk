# Every supported Lua (issue 7, SPEC section 5). Included by the Makefile.
#   make build-all-luas        build/<lua>/smtp/core.so for each of LUAS
#   make test-all-luas         the whole suite under each Lua, own BUILD dir,
#                              LUAS_JOBS at a time (tools/test-all-luas.sh);
#                              `make test` = deps + this
#   make test-lua5.1 ...       one of them (test-lua5.3, test-lua5.4, test-luajit)
#   make test-nginx            the OpenResty specs (nginx loads LuaJIT)
# LUAS_RUN picks the busted task (all, unit, dialogue, interop). Debian's
# pkg-config names equal the interpreter names, so LUA_PC = LUA works.

LUAS ?= lua5.4 lua5.3 lua5.1 luajit
LUAS_RUN ?= all
# Two suites at once fit the 2-core CI machine; four at once overload it
# enough to break the specs' timing margins (faults_spec's deadline + 1 s).
LUAS_JOBS ?= 2

.PHONY: build-all-luas test-all-luas test-nginx $(addprefix test-,$(LUAS)) $(addprefix build-,$(LUAS))

$(addprefix build-,$(LUAS)): build-%:
	@pkg-config --exists $* || { echo "no pkg-config entry for $* (make deps)"; exit 1; }
	@$(MAKE) --no-print-directory LUA=$* BUILD=build/$* all

build-all-luas: $(addprefix build-,$(LUAS))

$(addprefix test-,$(LUAS)): test-%: build-%
	@echo "== $* =="
	@SMTP_BUILD='build/$*' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/$*/?.so;;' \
		busted --lua=$* --run=$(LUAS_RUN)

# Runs every Lua even when one fails; sums the counts into one line.
test-all-luas: build-all-luas
	@sh tools/test-all-luas.sh -j $(LUAS_JOBS) -r $(LUAS_RUN) $(LUAS)

# nginx's lua module runs LuaJIT, so the specs need the LuaJIT build.
test-nginx: all build-luajit
	@$(TEST_ENV) SMTP_NGINX_BUILD=build/luajit $(BUSTED) --run=interop --tags=nginx
