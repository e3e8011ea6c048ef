#!/usr/bin/env bash
# Install the built .deb, run the installed app as an unprivileged user (uid 4242, no entry in
# /etc/passwd needed), remove it again, and check: dpkg owns only the package's own paths (no
# /opt, no folder of the base system other than the standard ones above ours), removal and purge
# print no warning, the optional photoreal folder (`sudo kminer photoreal install`) goes with the
# package, and the user's wallet and data survive removal and purge. Needs root (dpkg); refuses
# to touch a knowledge-miner package that was installed before it started.
#   deb_test.sh [dist/knowledge-miner_VERSION_ARCH.deb]
# KMINER_BPY_WHEEL=FILE: the real photoreal add-on is installed (as root) and seen by the user.
set -euo pipefail
deb="${1:-$(ls -t dist/knowledge-miner_*.deb 2>/dev/null | head -1)}"
[ -f "$deb" ] || { echo "deb-test: no .deb (run make package)" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "deb-test: needs root (dpkg -i / dpkg -r); skipped" >&2; exit 0; }
if dpkg-query -W -f='${Status}' knowledge-miner 2>/dev/null | grep -q "install ok installed"; then
  echo "deb-test: knowledge-miner is already installed here; not touching it" >&2; exit 1
fi
user_home="$(mktemp -d /tmp/kminer-deb-test-XXXXXX)"
UID_TEST=4242
chown "$UID_TEST:$UID_TEST" "$user_home"; chmod 700 "$user_home"
cleanup() {
  dpkg-query -W knowledge-miner >/dev/null 2>&1 && dpkg --purge knowledge-miner >/dev/null 2>&1 || true
  rm -rf "$user_home"
}
trap cleanup EXIT
fail() { echo "FAIL  $*" >&2; exit 1; }
# The installed app as a user would run it: its own HOME, platformdirs folders (no KMINER_HOME).
# A real unprivileged user (not root with another HOME): bubblewrap's user namespaces included.
as_user() { (cd "$user_home" && setpriv --reuid="$UID_TEST" --regid="$UID_TEST" --clear-groups \
  env -i PATH=/usr/bin:/bin HOME="$user_home" USER=kmtest LANG=C.UTF-8 KMINER_PASSWORD=deb-test-password "$@"); }
# dpkg's own output, failing on any warning (e.g. "directory ... not empty so not removed")
quiet_dpkg() {
  local out
  out="$(dpkg "$@" 2>&1)" || { echo "$out" >&2; fail "dpkg $*"; }
  if echo "$out" | grep -qi "warning"; then echo "$out" >&2; fail "dpkg $* warned"; fi
}

quiet_dpkg -i "$deb"
echo "PASS  dpkg -i $(basename "$deb") (no warning)"
# every path dpkg lists for the package is ours, or one of the standard folders above ours
stray="$(dpkg -L knowledge-miner | grep -vE '^/(\.)?$|^/usr$|^/usr/(bin|lib|share)$|^/usr/bin/kminer$|^/usr/lib/knowledge-miner(/|$)|^/usr/share/(applications|icons|doc)$|^/usr/share/applications/kminer\.desktop$|^/usr/share/icons/hicolor(/scalable(/apps(/kminer\.svg)?)?)?$|^/usr/share/doc/knowledge-miner(/copyright)?$' || true)"
[ -z "$stray" ] || fail "dpkg owns paths outside the package's own: $(echo "$stray" | head -5 | tr '\n' ' ')"
echo "PASS  dpkg -L: only /usr/lib/knowledge-miner, /usr/bin/kminer and its desktop entry, icon and doc (no /opt)"
[ "$(readlink /usr/bin/kminer)" = /usr/lib/knowledge-miner/kminer ] || fail "/usr/bin/kminer is not a link to /usr/lib/knowledge-miner/kminer"
[ -f /usr/share/applications/kminer.desktop ] || fail "no desktop entry"
[ -f /usr/share/icons/hicolor/scalable/apps/kminer.svg ] || fail "no icon"
if command -v desktop-file-validate >/dev/null 2>&1; then
  desktop-file-validate /usr/share/applications/kminer.desktop || fail "desktop entry does not validate"
fi
as_user /usr/bin/kminer --version
as_user /usr/bin/kminer self-test || fail "/usr/bin/kminer self-test"
echo "PASS  /usr/bin/kminer self-test"
job="$(as_user /usr/bin/kminer job run /usr/lib/knowledge-miner/_internal/resources/examples/python_job.json --sandbox strict --json)" \
  || fail "python job in the strict sandbox: $job"
echo "$job" | grep -q '"status": "succeeded"' || fail "python job in the strict sandbox from /usr/lib/knowledge-miner"
echo "PASS  a python job through the installed kminer worker in the strict sandbox"
# The scene editor's preview child, started through the /usr/bin/kminer link: it must re-invoke
# the real executable in /usr/lib/knowledge-miner (sys.executable), not the link's folder.
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
# the optional photoreal engine, installed the .deb way (as root, beside the bundle)
p="$(as_user /usr/bin/kminer photoreal)" && fail "photoreal reported installed before its install: $p"
echo "$p" | grep -q '^photoreal engine not installed: `kminer photoreal install` adds it' || fail "photoreal line: $p"
echo "PASS  kminer photoreal (user): $p"
if [ -n "${KMINER_BPY_WHEEL:-}" ]; then
  out="$(as_user /usr/bin/kminer photoreal install --wheel "$KMINER_BPY_WHEEL" 2>&1)" && fail "a user could install into /usr/lib"
  echo "$out" | grep -q "run \`sudo kminer photoreal install\`" || fail "a user's install did not say to use sudo: $out"
  env -i PATH=/usr/bin:/bin HOME=/root /usr/bin/kminer photoreal install --wheel "$KMINER_BPY_WHEEL" >/dev/null \
    || fail "sudo kminer photoreal install"
  out="$(as_user /usr/bin/kminer photoreal)" || fail "the user does not see the add-on: $out"
  echo "$out" | grep -q "^photoreal engine: Blender bpy 5.0.1" || fail "photoreal line: $out"
  echo "PASS  sudo kminer photoreal install --wheel: the user's kminer finds bpy in /usr/lib/knowledge-miner/photoreal"
else
  mkdir -p /usr/lib/knowledge-miner/photoreal/site-packages  # stands in for `sudo kminer photoreal install`
fi
quiet_dpkg -r knowledge-miner
[ ! -e /usr/bin/kminer ] && [ ! -e /usr/lib/knowledge-miner ] || fail "files left after dpkg -r"
echo "PASS  dpkg -r: no warning, /usr/lib/knowledge-miner gone (the photoreal folder with it)"
dpkg-query -W -f='${Status}' knowledge-miner 2>/dev/null | grep -q "config-files" || true
quiet_dpkg --purge knowledge-miner
after="$(cd "$data" && find . -type f -print0 | sort -z | xargs -0 sha256sum)"
[ "$before" = "$after" ] || fail "user data changed by removal"
echo "PASS  dpkg --purge: no warning; the user's wallet and data untouched"
