# Two entry points for a new machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint-code bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# The install log is shown only when the install fails.
	$(BIN)/python -m pip install -q --upgrade pip >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	$(BIN)/python -m pip install -q -e ".[dev]" >>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	touch $@

install: $(STAMP)

demo: install
	@bash examples/demo.sh

test: install
	@# The Kafka broker serves the event-step tests; it is stopped again whatever pytest says.
	@bash tests/services/kafka.sh start || echo "kafka: not started; the Kafka tests skip (and fail under CI=true)"
	@bash tests/services/graphviz.sh || echo "graphviz: not installed; the SVG tests skip (and fail under CI=true)"
	@bash tests/services/chromium.sh || echo "chromium: not installed; the browser tests skip (and fail under CI=true)"
	$(BIN)/python -m pytest -q; status=$$?; bash tests/services/kafka.sh stop; exit $$status

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .hypothesis
