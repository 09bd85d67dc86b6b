# Two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
DEMO   ?= build/demo

.PHONY: demo test test-fast lint typecheck bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# setuptools prints an "Editable installation" notice for every editable install, a block of
# asterisks a newcomer takes for a failure: it is information only, so it is not shown.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/microjourney demo $(DEMO)

test: $(VENV)/.installed typecheck
	bash scripts/system-packages.sh
	$(BIN)/ruff check microjourney tests benchmarks docs
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m 'not slow'

lint: $(VENV)/.installed
	$(BIN)/ruff check microjourney tests benchmarks

# mypy --strict on the core packages; what it checks is set in pyproject.toml ([tool.mypy]).
typecheck: $(VENV)/.installed
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/run.py --events 1000000

clean:
	rm -rf build .pytest_cache

docs: $(VENV)/.installed
	$(BIN)/python docs/generate_cli.py
