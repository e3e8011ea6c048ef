#!/usr/bin/env bash
# `make package`: the bundle built inside the Debian 11 root (glibc 2.31), then the .tar.gz,
# the .deb (Depends libc6 >= 2.31) and the HiveOS package, all into dist/.
#   packaging/linux/oldroot/build_bundle.sh [cpu|cuda]     (as root)
# cuda: the GPU bundle into dist/kminer-cuda, from a second venv in the root with the CUDA build
# of torch (KMINER_CUDA_TORCH, default torch==2.14.1, the cu130 build on this machine's index);
# numpy pinned like the CPU venv (build_root.sh: the photoreal add-on's bpy needs numpy < 2).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../../.." && pwd)"
R="${KMINER_OLDROOT:-$SRC/build/oldroot-bullseye}"
flavor="${1:-cpu}"
bash "$HERE/build_root.sh" "$R"
if [ "$flavor" = cpu ]; then
  venv=/opt/kmvenv; name=kminer
else
  venv=/opt/kmvenv-cuda; name=kminer-cuda
  torch="${KMINER_CUDA_TORCH:-torch==2.14.1}"
  # the app's dependencies, then the CUDA torch over the pinned CPU one (pip warns about the pin)
  "$HERE/enter.sh" "$R" bash -c "set -e; [ -x $venv/bin/python ] || /opt/python3.11/bin/python3.11 -m venv $venv
    cmp -s /src/pyproject.toml $venv/.pyproject 2>/dev/null || {
      $venv/bin/python -m pip install -q --upgrade pip setuptools wheel
      cd /src && $venv/bin/python -m pip install -q '.[packaging]' && $venv/bin/python -m pip install -q --no-deps pyrender==0.1.45
      $venv/bin/python -m pip install -q '$torch' 'numpy==${KMINER_BUNDLE_NUMPY:-1.26.4}' && $venv/bin/python -m pip uninstall -q -y knowledge-miner
      cp /src/pyproject.toml $venv/.pyproject; }"
fi
echo "oldroot: pyinstaller ($flavor) in the Debian 11 root"
"$HERE/enter.sh" "$R" bash -c "cd /src && nice -n 10 $venv/bin/python -m PyInstaller --noconfirm --log-level WARN \
  --distpath build/dist-$flavor --workpath build/pyinstaller-bullseye-$flavor packaging/kminer.spec \
  && rm -rf dist/$name && mkdir -p dist && mv build/dist-$flavor/kminer dist/$name"
echo "oldroot: .tar.gz, .deb, HiveOS package"
"$HERE/enter.sh" "$R" bash -c "cd /src && nice -n 10 /opt/python3.11/bin/python3.11 packaging/linux/make_dist.py --bundle dist/$name --out dist --flavor $flavor \
  && nice -n 10 /opt/python3.11/bin/python3.11 packaging/hiveos/make_hiveos.py --bundle dist/$name --out dist --flavor $flavor"
