# API reference with LDoc (Debian lua-ldoc, markdown by lua-discount):
# `make doc` writes doc/ from the doc comments in lua/ (config.ld says
# which modules are public); `make check-doc` fails when a public function
# of smtp or smtp.Client has no --- doc comment or an option goes unnamed.
LDOC ?= ldoc
DOC_DIR ?= doc

.PHONY: doc check-doc

doc:
	@command -v $(LDOC) >/dev/null 2>&1 || { echo "ldoc not found: run 'make deps' (Debian lua-ldoc)"; exit 1; }
	@rm -rf $(DOC_DIR)
	$(LDOC) -d $(DOC_DIR) .
	@test -f $(DOC_DIR)/index.html
	@echo "API reference: $(DOC_DIR)/index.html"

check-doc:
	$(TEST_ENV) $(BUSTED) spec/unit/doc_spec.lua
