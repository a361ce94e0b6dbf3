# Two entry points for a new machine: `make demo` and `make test`. Both install what they need.
PYTHON ?= python3
# Another virtualenv that has the project installed may stand in: `make demo VENV=/path/to/venv`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every recipe finds xsgen, xsync and the venv's python first, as an activated venv would.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo test lint-code bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# The install log is shown only when the install fails.
	$(BIN)/python -m pip install -q --upgrade pip >$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	$(BIN)/python -m pip install -q -e ".[dev]" >>$(VENV)/install.log 2>&1 || { cat $(VENV)/install.log; exit 1; }
	@# mypy does not run the editable install's import hook; a path entry shows it xsync (and
	@# so a scaffolded project's `mypy` passes as generated, as it does with a regular install).
	$(BIN)/python -c "import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()['purelib'], 'xprotogen-typecheck.pth').write_text(str(pathlib.Path('runtime').resolve()) + '\n')"
	touch $@

install: $(STAMP)

demo: install
	@VENV=$(VENV) bash examples/demo.sh

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
