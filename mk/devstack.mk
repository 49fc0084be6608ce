# make run's helpers (homesec_devstack).
.PHONY: token

# HOME is this target's argument, so the recipe runs Python without it (HOME stays the user's for Python).
STACK_DATA_DIR ?= .cache/stack
token: ## a token signed with the running make run's key: make token HOME=home-000123 [AUDIENCE=read]
	@if [ "$(origin HOME)" != "command line" ]; then \
	  echo "usage: make token HOME=home-000123 [AUDIENCE=read] [STACK_DATA_DIR=.cache/stack]" >&2; exit 2; fi
	@env -u HOME $(PY) -m homesec_devstack.devtoken $(HOME) $(if $(AUDIENCE),--audience $(AUDIENCE)) \
	  --data-dir $(STACK_DATA_DIR)
