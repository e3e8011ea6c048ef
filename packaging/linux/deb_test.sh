#!/usr/bin/env bash
# Install the built .deb, run the installed app, remove it again, and check that the user's
# wallet and data survive removal and purge. Needs root (dpkg); refuses to touch a
# knowledge-miner package that was installed before it started.
#   deb_test.sh [dist/knowledge-miner_VERSION_ARCH.deb]
set -euo pipefail
deb="${1:-$(ls -t dist/knowledge-miner_*.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "deb-test: no .deb (run make package)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "deb-test: needs root (dpkg -i / dpkg -r); skipped" >&2; exit 0; }
if dpkg-query -W -f='${Status}' knowledge-miner 2>/dev/null | grep -q "install ok installed"; then
  echo "deb-test: knowledge-miner is already installed here; not touching it" >&2; exit 1
fi
user_home="$(mktemp -d /tmp/kminer-deb-test-XXXXXX)"
cleanup() {
  dpkg-query -W knowledge-miner >/dev/null 2>&1 && dpkg --purge knowledge-miner >/dev/null 2>&1 || true
  rm -rf "$user_home"
}
trap cleanup EXIT
fail() { echo "FAIL  $*" >&2; exit 1; }
# The installed app as a user would run it: its own HOME, platformdirs folders (no KMINER_HOME).
as_user() { env -i PATH=/usr/bin:/bin HOME="$user_home" LANG=C.UTF-8 KMINER_PASSWORD=deb-test-password "$@"; }

dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
echo "PASS  dpkg -i $(basename "$deb")"
[ "$(readlink /usr/bin/kminer)" = /usr/lib/knowledge-miner/kminer ] || fail "/usr/bin/kminer is not a link to /usr/lib/knowledge-miner/kminer"
[ -f /usr/share/applications/kminer.desktop ] || fail "no desktop entry"
[ -f /usr/share/icons/hicolor/scalable/apps/kminer.svg ] || fail "no icon"
if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate /usr/share/applications/kminer.desktop || fail "desktop entry does not validate"
fi
as_user /usr/bin/kminer --version
as_user /usr/bin/kminer self-test || fail "/usr/bin/kminer self-test"
echo "PASS  /usr/bin/kminer self-test"
as_user /usr/bin/kminer job run /usr/lib/knowledge-miner/_internal/resources/examples/python_job.json --sandbox strict --json \
  | grep -q '"status": "succeeded"' || fail "python job in the strict sandbox from /opt"
echo "PASS  a python job through the installed kminer worker in the strict sandbox"
# The scene editor's preview child, started through the /usr/bin/kminer link: it must re-invoke
# the real executable in /opt (sys.executable), not the link's folder.
preview="$(as_user /usr/bin/kminer -c "$(cat packaging/linux/frozen/preview_frame.py)" \
  /usr/lib/knowledge-miner/_internal/resources/scenes/table_top.json)" || fail "preview child from /usr/bin/kminer"
echo "$preview" | grep -q '"argv": \["/usr/lib/knowledge-miner/kminer", "preview-server"\]' \
  || fail "preview child not started as /usr/lib/knowledge-miner/kminer preview-server: $preview"
echo "PASS  the scene editor's preview child (/usr/lib/knowledge-miner/kminer preview-server) rendered a view"
as_user /usr/bin/kminer wallet create --network local --json >/dev/null || fail "wallet create"
data="$user_home/.local/share/knowledge-miner"
[ -d "$data" ] || fail "no data folder at $data (platformdirs)"
before="$(cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
echo "PASS  wallet created under $data ($(echo "$before" | wc -l) files)"
dpkg -r knowledge-miner >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/kminer ] && [ ! -e /usr/lib/knowledge-miner ] || fail "files left after dpkg -r"
dpkg-query -W -f='${Status}' knowledge-miner 2>/dev/null | grep -q "config-files" || true
dpkg --purge knowledge-miner >/dev/null || fail "dpkg --purge"
after="$(cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
[ "$before" = "$after" ] || fail "user data changed by removal"
echo "PASS  dpkg -r and --purge removed /usr/lib/knowledge-miner and /usr/bin/kminer; wallet and data untouched"
