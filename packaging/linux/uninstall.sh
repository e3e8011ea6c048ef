#!/bin/sh
# Removes this unpacked Knowledge Miner: the menu entry and icon install-desktop.sh added (when
# they point at this folder), then this folder. Your wallet, chain, jobs, settings and logs stay
# (they live in your own folders; see "Files" in the README); --purge-data deletes them too,
# after you type "delete" (a wallet without its recovery phrase is lost for good).
#   ./uninstall.sh [--yes] [--purge-data]
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
yes=0; purge=0
for a in "$@"; do
  case "$a" in
    --yes) yes=1;; --purge-data) purge=1;;
    *) echo "uninstall: unknown option $a (use --yes, --purge-data)" >&2; exit 2;;
  esac
done
[ -x "$here/kminer" ] && [ -d "$here/_internal" ] || { echo "uninstall: $here does not look like a Knowledge Miner folder; nothing removed" >&2; exit 1; }
data="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data/applications/kminer.desktop"
if [ "$yes" -eq 0 ]; then
  printf 'Remove Knowledge Miner from %s? [y/N] ' "$here"; read -r ans
  case "$ans" in y|Y|yes) ;; *) echo "uninstall: nothing removed"; exit 0;; esac
fi
if [ -f "$entry" ] && grep -qxF "X-KMiner-Folder=$here" "$entry"; then
  rm -f "$entry" "$data/icons/hicolor/scalable/apps/kminer.svg"
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" 2>/dev/null || true
  echo "uninstall: removed the menu entry"
fi
if [ "$purge" -eq 1 ]; then
  dirs="${XDG_CONFIG_HOME:-$HOME/.config}/knowledge-miner $data/knowledge-miner ${XDG_STATE_HOME:-$HOME/.local/state}/knowledge-miner ${XDG_CACHE_HOME:-$HOME/.cache}/knowledge-miner"
  [ -n "${XDG_RUNTIME_DIR:-}" ] && dirs="$dirs $XDG_RUNTIME_DIR/knowledge-miner"
  echo "uninstall: --purge-data deletes your wallet keystore, chain, jobs, settings and logs:"
  for d in $dirs; do [ -e "$d" ] && echo "  $d"; done
  printf 'Type "delete" to delete them: '; read -r ans
  if [ "$ans" = delete ]; then
    for d in $dirs; do rm -rf -- "$d"; done; echo "uninstall: data deleted"
  else
    echo "uninstall: data kept"
  fi
fi
case "$here" in /|/usr|/usr/*|/bin|/etc|"$HOME") echo "uninstall: refusing to delete $here" >&2; exit 1;; esac
rm -rf -- "$here"
echo "uninstall: removed $here"
