# The two commands: `make run` serves the platform, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint format bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/formloom init
	@credentials="$${FORMLOOM_DATA_DIR:-var}/admin-credentials.txt"; \
	if [ -f "$$credentials" ]; then echo; cat "$$credentials"; echo; fi
	$(BIN)/formloom serve --port $(PORT)

# Browser tests (tests/browser) need /usr/bin/chromium; without it they are skipped, and said so.
test: $(VENV)/.installed-dev
	@if [ ! -x /usr/bin/chromium ]; then echo "NOTE: /usr/bin/chromium not found: the browser tests" \
		"(tests/browser) will be skipped; install it with: apt-get install -y chromium fonts-wqy-microhei"; fi
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf build/typecheck && mkdir -p build/typecheck/formloom
	for d in platform engine designer_api apps migrations; do ln -s ../../../$$d build/typecheck/formloom/$$d; done
	cd build/typecheck && ../../$(BIN)/mypy --config-file ../../pyproject.toml formloom

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
