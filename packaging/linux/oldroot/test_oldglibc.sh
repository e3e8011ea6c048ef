#!/usr/bin/env bash
# `make package-test-oldglibc`: runs the built bundle on glibc 2.31. Makes a clean Debian 11
# (bullseye) root with only the app's runtime packages (packaging/debian-deps.sh runtime,
# bubblewrap 0.4 included), Xvfb and bullseye's python3 (3.9, for the test driver), then, in
# a private mount namespace pivoted into that root (not a chroot: a chrooted process may not
# create the user namespaces bubblewrap needs), runs packaging/linux/package_test.py as an
# unprivileged user: version, self-test, devices, the strict-sandbox python/render/train jobs
# through the frozen worker, train+infer, wallet, benchmark child, market round, preview child,
# OSMesa fallback, QR/charts, shared store, the GUI (first paint timed), the wizard and pages.
#   packaging/linux/oldroot/test_oldglibc.sh [BUNDLE_DIR | --prepare]   (as root; default dist/kminer)
# KMINER_BPY_WHEEL=FILE (the bpy 5.0.1 wheel): the bundle is mounted as an overlay the test user
# may write to (like a .tar.gz unpacked in the user's home) and the photoreal add-on step installs
# the wheel, renders a Cycles frame in the strict sandbox and removes it; without it that step SKIPs.
# Report: dist/oldglibc/package-test.json; screens: dist/oldglibc/screens/. --prepare: only the root.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$(cd "$HERE/../../.." && pwd)"
R="${KMINER_TESTROOT:-$SRC/build/oldroot-bullseye-run}"
BUNDLE="${1:-$SRC/dist/kminer}"
MIRROR="${KMINER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
[ "$(id -u)" -eq 0 ] || { echo "oldglibc-test: needs root (debootstrap, mount namespaces); run it with sudo" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "oldglibc-test: debootstrap missing: apt-get install -y debootstrap" >&2; exit 2; }
if [ ! -e "$R/.kminer-stage-run" ]; then
  mapfile -t runtime < <(bash "$SRC/packaging/debian-deps.sh" list-runtime)
  echo "oldglibc-test: debootstrap bullseye + ${#runtime[@]} runtime packages into $R"
  mkdir -p "$R"
  debootstrap --variant=minbase --include=ca-certificates bullseye "$R" "$MIRROR" >/dev/null
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  printf 'deb %s bullseye main\ndeb %s bullseye-updates main\ndeb http://deb.debian.org/debian-security bullseye-security main\n' \
    "$MIRROR" "$MIRROR" > "$R/etc/apt/sources.list"
  chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    "mount -t proc proc /proc 2>/dev/null; apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends ${runtime[*]} python3 xvfb xauth procps >/dev/null; umount /proc 2>/dev/null || true"
  chroot "$R" useradd -m -u 4242 -s /bin/bash kmtest
  touch "$R/.kminer-stage-run"
fi
[ "$BUNDLE" = --prepare ] && exit 0
[ -x "$BUNDLE/kminer" ] || { echo "oldglibc-test: no bundle at $BUNDLE (make package first)" >&2; exit 2; }
BUNDLE="$(cd "$BUNDLE" && pwd)"
OUT="$SRC/dist/oldglibc"
rm -rf "$OUT"; mkdir -p "$OUT"; chown 4242:4242 "$OUT"
WHEEL="${KMINER_BPY_WHEEL:-}"; UP=""
if [ -n "$WHEEL" ]; then
  [ -f "$WHEEL" ] || { echo "oldglibc-test: KMINER_BPY_WHEEL=$WHEEL is not a file" >&2; exit 2; }
  WHEEL="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")"
  UP="$SRC/build/oldglibc-overlay"; rm -rf "$UP"; mkdir -p "$UP/upper" "$UP/work"; chown 4242:4242 "$UP/upper"
fi
KMINER_PACKAGE_TEST_ARGS="${KMINER_PACKAGE_TEST_ARGS:-}"   # e.g. "--only market,gui"
export R SRC BUNDLE OUT WHEEL UP KMINER_PACKAGE_TEST_ARGS
unshare --mount --propagation private --pid --fork -- bash -c '
  set -e
  mount --bind "$R" "$R"
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount --rbind /sys "$R/sys"
  mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
  mkdir -p "$R/src" "$R/opt/kminer"
  mount --bind -o ro "$SRC" "$R/src"
  mkdir -p "$R/out"; mount --bind "$OUT" "$R/out"
  extra=""
  if [ -n "$WHEEL" ]; then
    mount -t overlay overlay -o "lowerdir=$BUNDLE,upperdir=$UP/upper,workdir=$UP/work" "$R/opt/kminer"
    mkdir -p "$R/wheels"; touch "$R/wheels/$(basename "$WHEEL")"
    mount --bind -o ro "$WHEEL" "$R/wheels/$(basename "$WHEEL")"
    extra="--bpy-wheel /wheels/$(basename "$WHEEL")"
  else
    mount --bind -o ro "$BUNDLE" "$R/opt/kminer"
  fi
  cd "$R"; mkdir -p .oldroot; pivot_root . .oldroot; cd /
  umount -l /.oldroot
  echo "oldglibc-test: $(ldd --version | head -1), $(bwrap --version), $(python3 --version)"
  exec setpriv --reuid=4242 --regid=4242 --init-groups /usr/bin/env -i HOME=/home/kmtest USER=kmtest LANG=C.UTF-8 \
    PATH=/usr/bin:/bin python3 /src/packaging/linux/package_test.py --exe /opt/kminer/kminer \
    --report /out/package-test.json --screens /out/screens $extra $KMINER_PACKAGE_TEST_ARGS
'
