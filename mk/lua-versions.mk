# Every supported Lua (issue 7, SPEC section 5). Included by the Makefile.
#   make build-all-luas        build/<lua>/smtp/core.so for each of LUAS
#   make test-all-luas         the whole suite under each Lua, own BUILD dir
#   make test-lua5.1 ...       one of them (test-lua5.3, test-lua5.4, test-luajit)
#   make test-nginx            the OpenResty specs (nginx loads LuaJIT)
# LUAS_RUN picks the busted task (all, unit, dialogue, interop). Debian's
# pkg-config names equal the interpreter names, so LUA_PC = LUA works.

LUAS ?= lua5.4 lua5.3 lua5.1 luajit
LUAS_RUN ?= all

.PHONY: build-all-luas test-all-luas test-nginx $(addprefix test-,$(LUAS)) $(addprefix build-,$(LUAS))

$(addprefix build-,$(LUAS)): build-%:
	@pkg-config --exists $* || { echo "no pkg-config entry for $* (make deps)"; exit 1; }
	@$(MAKE) --no-print-directory LUA=$* BUILD=build/$* all

build-all-luas: $(addprefix build-,$(LUAS))

$(addprefix test-,$(LUAS)): test-%: build-%
	@echo "== $* =="
	@SMTP_BUILD='build/$*' LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/$*/?.so;;' \
		busted --lua=$* --run=$(LUAS_RUN)

# Runs every Lua even when one fails, then reports which failed.
test-all-luas: deps
	@failed=""; \
	for l in $(LUAS); do \
		$(MAKE) --no-print-directory test-$$l || failed="$$failed $$l"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-all-luas: failed under:$$failed"; exit 1; fi; \
	echo "test-all-luas: passed under $(LUAS)"

# nginx's lua module runs LuaJIT, so the specs need the LuaJIT build.
test-nginx: all build-luajit
	@$(TEST_ENV) SMTP_NGINX_BUILD=build/luajit $(BUSTED) --run=interop --tags=nginx
