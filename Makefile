PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test tools lint unit mutation bench stack-check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flowscope demo
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
