# Knowledge Miner. `make run` sets up and starts the app; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test deps deps-test venv lint clean node contracts screenshots
.PHONY: package package-test package-deb-test

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
	$(BIN)/python -m pip install -q -e '.[dev,photoreal]'  # photoreal: bpy (GPL-3.0, optional for users)
	$(BIN)/python -m pip install -q --no-deps pyrender==0.1.45  # see pyproject: PyOpenGL 3.1.10, not its 3.1.0 pin
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

# Installers (packaging/README.md): the PyInstaller bundle in dist/kminer, then a .tar.gz and
# a .deb with SHA-256 sums beside them (signed when KMINER_GPG_KEY is set). Not part of `make test`.
PKG_STAMP := $(VENV)/.packaging

$(PKG_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,packaging]'
	@touch $@

package: deps venv $(PKG_STAMP)
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/kminer.spec
	$(BIN)/python packaging/linux/make_dist.py --bundle dist/kminer --out dist
	bash packaging/linux/sign.sh dist

# Runs the built bundle in a clean environment: self-test, jobs in the strict sandbox, train and
# infer, wallet, benchmark child, GUI first paint; prints sizes and start-up times.
package-test: deps-test
	python3 packaging/linux/package_test.py --exe dist/kminer/kminer

# As root: dpkg -i the .deb, run /usr/bin/kminer, dpkg -r/--purge, check user data survives.
package-deb-test:
	bash packaging/linux/deb_test.sh

# Render the demo shelf, train the demo detector and classifier into resources/models/ (CPU: ~1 h).
.PHONY: demo-models
demo-models: venv
	$(BIN)/python -m jobs.train.demo_models --out resources/models
