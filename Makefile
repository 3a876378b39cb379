# The front door. `make up` runs the sandbox natively; `make test` runs the tests.
# With Docker and a registry: `docker compose up`. With Docker's packages but no registry (or no running engine):
# `make docker-local`, stopped by `make docker-local-down`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

# What `make up` passes on, e.g. make up ARGS="--candidate reference_solution"
ARGS ?=

.PHONY: up down status reload test system-deps test-system-deps docker-deps docker-local docker-local-down venv clean

up: system-deps venv
	$(BIN)/mlsandbox up $(ARGS)

down:
	@if [ -x $(BIN)/mlsandbox ]; then $(BIN)/mlsandbox down; else echo "nothing to stop (no $(VENV))"; fi

status: venv
	$(BIN)/mlsandbox status

reload: venv
	$(BIN)/mlsandbox reload

test: test-system-deps venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Builds the images here (a local Debian base from debootstrap; Prometheus and Alertmanager from Debian's packages),
# starts compose.yaml with compose.local-images.yaml (no Grafana) and waits until every service is healthy.
# Starts a private Docker engine under run/docker when none answers. E.g. make docker-local ARGS="--scenario smoke"
docker-local: docker-deps venv
	$(BIN)/mlsandbox docker up --local-images $(ARGS)

docker-local-down:
	@if [ -x $(BIN)/mlsandbox ]; then $(BIN)/mlsandbox docker down $(ARGS); else echo "nothing to stop (no $(VENV))"; fi

system-deps:
	@scripts/ensure-system-deps.sh

docker-deps:
	@scripts/ensure-system-deps.sh --docker

test-system-deps:
	@scripts/ensure-system-deps.sh --test

venv: $(STAMP)

# Pinned: every package at the version in constraints.txt (pandas<3 among them: evidently needs it).
$(STAMP):
	@echo "creating $(VENV) and installing pinned packages (a few minutes the first time) ..."
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "$(VENV) ready"

clean: down
	@if [ -f run/docker-stack.json ]; then $(BIN)/mlsandbox docker down --volumes; fi
	rm -rf $(VENV) run
