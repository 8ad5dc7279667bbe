# unigate: every target builds its own virtualenv from the pinned pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench bench-crypto bench-gateway vectors clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/unigate demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest

bench-crypto: $(STAMP)
	$(BIN)/unigate bench crypto

bench-gateway: $(STAMP)
	$(BIN)/unigate bench gateway

bench: bench-crypto

vectors: $(STAMP)
	$(BIN)/python -m gateway.vectors docs/vectors

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
