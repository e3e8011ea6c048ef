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

# Installers (packaging/README.md). Not part of `make test`.
# `make package` builds in a Debian 11 root (glibc 2.31: Ubuntu 20.04, HiveOS and newer start it):
# debootstrap (apt-get install debootstrap) + CPython 3.11 compiled there + the app's venv, about
# an hour the first time (build/oldroot-bullseye), minutes afterwards; needs root. Then the
# .tar.gz, the .deb (libc6 >= 2.31), the HiveOS package, SHA-256 sums (signed when KMINER_GPG_KEY is set).
PKG_STAMP := $(VENV)/.packaging
.PHONY: package-host package-gpu package-hiveos package-test-oldglibc oldroot gpu-check

$(PKG_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,packaging]'
	@touch $@

oldroot:
	@command -v debootstrap >/dev/null || { echo "installing debootstrap"; apt-get install -y -q debootstrap >/dev/null; }
	bash packaging/linux/oldroot/build_root.sh

package: oldroot
	bash packaging/linux/oldroot/build_bundle.sh cpu
	bash packaging/linux/sign.sh dist

# The GPU bundle (dist/kminer-cuda): the same, with the CUDA build of torch (driver >= 580.65.06).
package-gpu: oldroot
	bash packaging/linux/oldroot/build_bundle.sh cuda
	bash packaging/linux/sign.sh dist

# The quick build on this machine (its glibc becomes the floor): minutes, no root needed.
package-host: deps venv $(PKG_STAMP)
	$(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller packaging/kminer.spec
	$(BIN)/python packaging/linux/make_dist.py --bundle dist/kminer --out dist
	$(BIN)/python packaging/hiveos/make_hiveos.py --bundle dist/kminer --out dist
	bash packaging/linux/sign.sh dist

package-hiveos:
	python3 packaging/hiveos/make_hiveos.py --bundle dist/kminer --out dist

# Runs the built bundle in a clean environment: self-test, jobs in the strict sandbox, train and
# infer, wallet, benchmark child, GUI first paint; prints sizes and start-up times.
package-test: deps-test
	python3 packaging/linux/package_test.py --exe dist/kminer/kminer

# The same steps on glibc 2.31: inside a clean Debian 11 root made by the test (root needed).
package-test-oldglibc:
	@command -v debootstrap >/dev/null || { echo "installing debootstrap"; apt-get install -y -q debootstrap >/dev/null; }
	bash packaging/linux/oldroot/test_oldglibc.sh dist/kminer

# As root: dpkg -i the .deb, run /usr/bin/kminer, dpkg -r/--purge, check user data survives.
package-deb-test:
	bash packaging/linux/deb_test.sh

# Every GPU path (NVML, CUDA training and DDP, EGL on the NVIDIA driver, the GPU bundle) with a
# figure against the CPU, in under 10 minutes on a GPU machine; results in build/gpu-check/.
# Without a GPU it says it skipped and why (exit 0).
gpu-check: venv
	$(BIN)/python bench/gpu_check.py --out build/gpu-check

# Render the demo shelf, train the demo detector and classifier into resources/models/ (CPU: ~1 h).
.PHONY: demo-models
demo-models: venv
	$(BIN)/python -m jobs.train.demo_models --out resources/models
