# The venv is rebuilt whenever pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

# stdout belongs to `make run` (the stdio transport's JSON lines): no recipe line is
# echoed there, and what installing prints goes to stderr.
$(STAMP): pyproject.toml
	@echo "make: installing wabot into $(VENV)" >&2
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) >&2
	@$(BIN)/python -m pip install -q --upgrade pip >&2
	@$(BIN)/python -m pip install -q -e '.[dev]' >&2
	@touch $(STAMP)

run: $(STAMP)
	@$(BIN)/python -m pipeline run $(ARGS)

# One worker per core, a test file per worker at a time (module fixtures are set up once).
TEST_WORKERS ?= auto

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
