# Knowledge Miner. `make run` sets up and starts the app; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test deps deps-test venv lint clean node contracts screenshots

run: deps venv
	$(BIN)/kminer

test: deps-test venv node
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

deps:
	@bash packaging/debian-deps.sh runtime

deps-test:
	@bash packaging/debian-deps.sh test

venv: $(STAMP)

# torch==2.13.0 (pinned in pyproject) resolves to the CPU build on local disk here.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# solc-js, OpenZeppelin and anvil from npm (package-lock.json pins them) for wallet/contracts.
node: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

contracts: node
	node wallet/compile.js

lint: venv
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

screenshots: deps-test venv
	xvfb-run -a -s "-screen 0 1280x900x24" $(BIN)/python docs/make_screenshots.py --standin
