PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two stamps on one venv: the demo needs only the cli extra; the dev tools are a superset of it,
# so installing them also satisfies the demo, and neither install undoes the other.
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-cli
# Options for the demo, e.g. make demo ARGS="--duration 5 --metrics-port 0"
ARGS   ?=

.PHONY: install demo test tools lint unit mutation bench stack-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[cli]'
	touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/flowscope demo $(ARGS)
	@echo "Next, the README's first snippet end to end (a bad launch, its hint, the span): $(BIN)/python examples/quickstart.py"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/mypy src

# prometheus, promtool and prometheus-pushgateway: installed here on Debian, named otherwise.
tools:
	scripts/ensure-tools

unit: $(STAMP)
	$(BIN)/pytest -q

# Deliberate breakages of the core that the tests guarding them must catch.
mutation: $(STAMP)
	$(BIN)/python scripts/mutation_check.py

test: tools lint unit mutation
	$(BIN)/python -m benchmarks --smoke

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
