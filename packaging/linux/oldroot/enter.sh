#!/usr/bin/env bash
# Runs a command inside the old build root, in a private mount namespace (the mounts vanish with
# it): /proc, /dev, /sys, the source tree at /src, and the local package indexes pip is
# configured with (read-only, same paths).
#   packaging/linux/oldroot/enter.sh ROOT COMMAND...
set -euo pipefail
R="$(cd "$1" && pwd)"; shift
SRC="$(cd "$(dirname "$0")/../../.." && pwd)"
export R SRC
exec unshare --mount --propagation private -- bash -c '
  set -e
  mount -t proc proc "$R/proc"
  mount --rbind /dev "$R/dev"
  mount --rbind /sys "$R/sys"
  mkdir -p "$R/src"; mount --bind "$SRC" "$R/src"
  for d in /opt/pypi /opt/pypi-more /opt/wheels; do
    [ -d "$d" ] || continue; mkdir -p "$R$d"; mount --bind -o ro "$d" "$R$d"
  done
  exec chroot "$R" /usr/bin/env -i HOME=/root PATH=/opt/kmvenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
' bash "$@"
