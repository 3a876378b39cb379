# The front door. `make up` runs the sandbox natively; `make test` runs the tests; `make help` lists the rest.
# With Docker and a registry: `docker compose up`. With Docker's packages but no registry (or no running engine):
# `make docker-local`, stopped by `make down`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

# What `make up` passes on, e.g. make up ARGS="--candidate reference_solution"
ARGS ?=

.PHONY: help up down status reload test test-fast test-stack test-docker lint format system-deps test-system-deps docker-deps docker-local \
        docker-local-down venv checkov clean

help: ## This list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

up: system-deps venv ## Run the sandbox natively (installs what is missing); options via ARGS="..."
	$(BIN)/mlsandbox up $(ARGS)

down: ## Stop the sandbox (native or Docker)
	@if [ -x $(BIN)/mlsandbox ]; then $(BIN)/mlsandbox down $(ARGS); else echo "nothing to stop (no $(VENV))"; fi

status: venv ## Each component and its health
	$(BIN)/mlsandbox status

reload: venv ## Check the candidate's alert rules and load them into Prometheus
	$(BIN)/mlsandbox reload

# Tests run in parallel workers: a stack test's module (or the grader's shared play) stays in one worker, on ports
# of its own (tests/conftest.py); plays mostly wait, so more workers than cores, but not so many that the plays'
# grades move with the load (four on two cores did). WORKERS=0 runs them one by one.
WORKERS ?= 3
XDIST  := -n $(WORKERS) --dist loadscope --no-loadscope-reorder

test: test-system-deps venv checkov lint ## Every test (what CI runs): lint, then unit, stack and Docker tests, in parallel
	$(BIN)/python -m pytest $(XDIST) --durations=15 $(PYTEST_ARGS)

test-fast: venv checkov ## The unit tests only (no process started; under a minute)
	$(BIN)/python -m pytest -m "not stack and not docker" -n 2 -q $(PYTEST_ARGS)

test-stack: test-system-deps venv ## The native stack tests (real processes, no Docker)
	$(BIN)/python -m pytest -m "stack and not docker" $(XDIST) --durations=15 $(PYTEST_ARGS)

test-docker: test-system-deps venv ## The Docker path: images built (or taken from the machine's store), compose played
	$(BIN)/python -m pytest -m docker --durations=5 $(PYTEST_ARGS)

lint: venv ## ruff: lint and formatting, as CI checks them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: venv ## Let ruff fix what it can and format the tree
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Builds the images here (a local Debian base from debootstrap; Prometheus and Alertmanager from Debian's packages),
# starts compose.yaml with compose.local-images.yaml (no Grafana) and waits until every service is healthy.
# Starts a private Docker engine under run/docker when none answers. E.g. make docker-local ARGS="--scenario smoke"
docker-local: docker-deps venv ## The Docker stack where no registry can be reached (images built here)
	$(BIN)/mlsandbox up --docker --local-images $(ARGS)

docker-local-down: ## Stop it (ARGS="--volumes" deletes the data too)
	@if [ -x $(BIN)/mlsandbox ]; then $(BIN)/mlsandbox down $(ARGS); else echo "nothing to stop (no $(VENV))"; fi

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

# checkov (the Kubernetes manifests' policy check in the tests) pins packages below the project's own: it gets a
# virtualenv of its own, pinned by constraints-checkov.txt.
CHECKOV       := .venv-checkov
CHECKOV_STAMP := $(CHECKOV)/.installed-$(shell cat constraints-checkov.txt | cksum | cut -d' ' -f1)

checkov: $(CHECKOV_STAMP) ## checkov in a virtualenv of its own (its pins conflict with the project's)

$(CHECKOV_STAMP):
	@echo "creating $(CHECKOV) for checkov (about a minute the first time) ..."
	@test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	@$(CHECKOV)/bin/python -m pip install --quiet --upgrade pip
	@$(CHECKOV)/bin/python -m pip install --quiet -c constraints-checkov.txt checkov
	@rm -f $(CHECKOV)/.installed-*
	@touch $@

clean: ## Stop everything and delete .venv and run/
	@if [ -x $(BIN)/mlsandbox ]; then $(BIN)/mlsandbox down --volumes; fi
	rm -rf $(VENV) $(CHECKOV) run
