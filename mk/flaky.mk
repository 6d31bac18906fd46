# Flaky-test hunt (issue 23), not run by CI: `make loop-dialogue N=20`
# runs the dialogue specs under LOOP_LUAS, all at once as `make test` runs
# two Luas side by side (tools/test-all-luas.sh, logs in build/<lua>/),
# N rounds in a row. Stops at the first failing round; prints how many
# rounds passed and how long they took.
N ?= 20
LOOP_LUAS ?= luajit lua5.4
LOOP_RUN ?= dialogue

.PHONY: loop-dialogue

loop-dialogue: $(addprefix build-,$(LOOP_LUAS))
	@case '$(N)' in ''|*[!0-9]*|0) echo "loop-dialogue: N wants a positive number" >&2; exit 2 ;; esac; \
	start=$$(date +%s); i=0; \
	while [ $$i -lt $(N) ]; do \
	  i=$$((i + 1)); \
	  echo "== loop-dialogue: round $$i of $(N)"; \
	  if ! sh tools/test-all-luas.sh -j $(words $(LOOP_LUAS)) -r $(LOOP_RUN) $(LOOP_LUAS); then \
	    echo "loop-dialogue: round $$i failed; $$((i - 1)) of $(N) rounds passed before it ($$(( $$(date +%s) - start )) s)"; \
	    exit 1; \
	  fi; \
	done; \
	echo "loop-dialogue: $(N) of $(N) rounds passed in $$(( $$(date +%s) - start )) s"
