# Soak (issue 8): `make soak` runs bench/soak.lua, SOAK_CONNECTIONS
# sequential connections (or SOAK_SECONDS, whichever ends first) against a
# loopback server that fails in rotating ways; it fails when open fds or
# RSS grow or an outcome does not match its failure mode.
.PHONY: soak

SOAK_CONNECTIONS ?= 10000
SOAK_SECONDS ?= 900

soak: all
	$(TEST_ENV) $(LUA) bench/soak.lua $(SOAK_CONNECTIONS) $(SOAK_SECONDS)
