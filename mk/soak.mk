# Soak: the whole local stack as a small deployment under a day-like load and a schedule of disruptions,
# verified from the outside (docs/operations.md#soak-test).
.PHONY: soak
SOAK_MINUTES ?= 60

soak: setup ## SOAK_MINUTES (60) of load and disruptions on the local stack, verified; fails if a goal fails
	$(PY) -m tests.soak --minutes $(SOAK_MINUTES) --write docs/benchmarks.md $(SOAK_ARGS)
