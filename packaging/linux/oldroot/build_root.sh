#!/usr/bin/env bash
# Builds the old build root for the Linux bundle: a Debian 11 (bullseye, glibc 2.31) root made
# with debootstrap from Debian's packages, CPython 3.11 compiled inside it from Debian's
# source package (upstream tarball, bookworm's python3.11), and a venv with the app's
# dependencies. The bundle built in it starts on glibc 2.31 (Ubuntu 20.04 / HiveOS) and newer.
#
#   packaging/linux/oldroot/build_root.sh [ROOT]        (as root; ROOT defaults to build/oldroot-bullseye)
#
# Needs: root, debootstrap (apt-get install debootstrap), unshare, network to deb.debian.org
# and to the Python package index pip is configured with. Each stage leaves a stamp in
# ROOT/.kminer-stage-*, so a second run only does what is missing. About an hour the first
# time on 2 cores (the CPython build is most of it); minutes afterwards.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../../.." && pwd)"
R="${1:-$SRC/build/oldroot-bullseye}"
SUITE=bullseye
MIRROR="${KMINER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYVER=3.11.2
PYPREFIX=/opt/python3.11
VENV=/opt/kmvenv
# the CPU bundle's torch: the CPU build (an index may offer the CUDA build under the plain
# version, which would put 2.4 GB of CUDA libraries into the CPU bundle)
CPU_TORCH="${KMINER_CPU_TORCH:-2.13.0+cpu}"
# numpy < 2 in the bundle: the photoreal add-on (bpy 5.0.1, installed beside the bundle by
# `kminer photoreal install`) imports the bundle's numpy and is built for numpy 1.x; the project's
# test venv (with the photoreal extra) has the same 1.26.4
NUMPY="${KMINER_BUNDLE_NUMPY:-1.26.4}"
say() { echo "oldroot: $*"; }
[ "$(id -u)" -eq 0 ] || { echo "oldroot: needs root (debootstrap and chroot); run it with sudo" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "oldroot: debootstrap missing: apt-get install -y debootstrap" >&2; exit 2; }
mkdir -p "$R"

# 1. the Debian 11 root
if [ ! -e "$R/.kminer-stage-debootstrap" ]; then
  say "debootstrap $SUITE into $R"
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$R" "$MIRROR"
  cat > "$R/etc/apt/sources.list" <<SRC
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
SRC
  touch "$R/.kminer-stage-debootstrap"
fi
cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true

# 2. build tools, CPython's build dependencies, the app's runtime libraries, Xvfb for the GUI test
if [ ! -e "$R/.kminer-stage-apt" ]; then
  mapfile -t runtime < <(bash "$SRC/packaging/debian-deps.sh" list-runtime)
  build=(build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev
         libsqlite3-dev libreadline-dev libncursesw5-dev uuid-dev libgdbm-dev libexpat1-dev
         xz-utils binutils dpkg-dev file xvfb xauth procps)
  say "apt-get install ${#build[@]} build packages and ${#runtime[@]} runtime packages"
  "$HERE/enter.sh" "$R" bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends ${build[*]} ${runtime[*]}"
  touch "$R/.kminer-stage-apt"
fi

# 3. CPython 3.11 (shared libpython, which PyInstaller needs), from Debian's python3.11 source
if [ ! -e "$R/.kminer-stage-python" ]; then
  tarball="$R/usr/src/python3.11_$PYVER.orig.tar.gz"
  if [ ! -s "$tarball" ]; then
    say "apt-get source python3.11 (bookworm) for the upstream $PYVER tarball"
    tmp="$(mktemp -d)"; mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
    echo "deb-src $MIRROR bookworm main" > "$tmp/sources.list"
    A=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
       -o Dir::State::Lists="$tmp/lists" -o Dir::Cache="$tmp/cache" -o APT::Sandbox::User=root)
    apt-get "${A[@]}" update -q >/dev/null
    (cd "$tmp" && apt-get "${A[@]}" source --download-only -q python3.11 >/dev/null)
    mkdir -p "$R/usr/src"; cp "$tmp"/python3.11_"$PYVER".orig.tar.gz "$tarball"; rm -rf "$tmp"
  fi
  say "building CPython $PYVER in the root (nice; ~20-40 min on 2 cores)"
  "$HERE/enter.sh" "$R" bash -c "set -e; cd /usr/src && rm -rf Python-$PYVER && tar xzf python3.11_$PYVER.orig.tar.gz && cd Python-$PYVER \
    && ./configure -q --prefix=$PYPREFIX --enable-shared LDFLAGS=-Wl,-rpath,$PYPREFIX/lib \
    && nice -n 10 make -s -j\$(nproc) && make -s install >/dev/null && $PYPREFIX/bin/python3.11 -c 'import ssl, sqlite3, lzma, bz2, ctypes, readline; print(\"python ok\")'"
  touch "$R/.kminer-stage-python"
fi

# 4. the venv with the app's dependencies and PyInstaller (pip's configuration from this machine)
if [ ! -e "$R/.kminer-stage-venv" ] || [ "$SRC/pyproject.toml" -nt "$R/.kminer-stage-venv" ]; then
  mkdir -p "$R/etc/xdg"
  # this machine's own certificate authorities (a proxy's, a company's) for pip
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
    "$HERE/enter.sh" "$R" update-ca-certificates >/dev/null
  fi
  [ -e /etc/pip.conf ] && cp /etc/pip.conf "$R/etc/pip.conf"
  [ -d /etc/xdg/pip ] && cp -r /etc/xdg/pip "$R/etc/xdg/"
  say "venv $VENV with the app's dependencies"
  "$HERE/enter.sh" "$R" bash -c "set -e; [ -x $VENV/bin/python ] || $PYPREFIX/bin/python3.11 -m venv $VENV; \
    $VENV/bin/python -m pip install -q --upgrade pip setuptools wheel; \
    cd /src && $VENV/bin/python -m pip install -q '.[packaging]' && $VENV/bin/python -m pip install -q --no-deps pyrender==0.1.45 \
    && $VENV/bin/python -m pip uninstall -q -y knowledge-miner \
    && $VENV/bin/python -m pip install -q --force-reinstall --no-deps \$(ls /opt/wheels/torch-$CPU_TORCH-*.whl 2>/dev/null || echo 'torch==$CPU_TORCH') \
    && { $VENV/bin/python -m pip list --format=freeze | grep -iE '^(nvidia-|triton=)' | grep -v '^nvidia-ml-py' | cut -d= -f1 | xargs -r $VENV/bin/python -m pip uninstall -q -y; }"
  touch "$R/.kminer-stage-venv"
  rm -f "$R"/.kminer-stage-numpy-*
fi
if [ ! -e "$R/.kminer-stage-numpy-$NUMPY" ]; then
  say "numpy $NUMPY in $VENV (the photoreal add-on's bpy needs numpy < 2)"
  "$HERE/enter.sh" "$R" bash -c "set -e; $VENV/bin/python -m pip install -q 'numpy==$NUMPY'; $VENV/bin/python -m pip check || echo 'oldroot: pip check is not clean (above)'"
  touch "$R/.kminer-stage-numpy-$NUMPY"
fi
say "ready: $R (glibc $(chroot "$R" ldd --version | head -1 | awk '{print $NF}'), $(chroot "$R" $PYPREFIX/bin/python3.11 --version))"
