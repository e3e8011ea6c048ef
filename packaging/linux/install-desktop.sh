#!/bin/sh
# Adds Knowledge Miner to your desktop's application menu, for this unpacked folder: the entry
# runs this folder's kminer by its full path (no PATH lookup). Only your own folders are
# touched: ~/.local/share/applications/kminer.desktop and
# ~/.local/share/icons/hicolor/scalable/apps/kminer.svg. ./uninstall.sh removes them again.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
[ -x "$here/kminer" ] || { echo "install-desktop: no kminer in $here" >&2; exit 1; }
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/share/kminer.svg" "$icons/kminer.svg"
# a desktop entry quotes an Exec argument that holds spaces (Desktop Entry Specification)
case "$here" in *%*|*\"*|*\`*|*\$*|*\\*) echo "install-desktop: move the folder to a path without quotes, \$, \` or \\ first" >&2; exit 1;; esac
tmp="$apps/.kminer.desktop.$$"
cat > "$tmp" <<ENTRY
[Desktop Entry]
Type=Application
Version=1.5
Name=Knowledge Miner
GenericName=GPU knowledge mining
Comment=Sell synthetic-data rendering and model training from your GPUs for NTK
Exec="$here/kminer"
TryExec=$here/kminer
Icon=$icons/kminer.svg
Terminal=false
Categories=Utility;Science;
Keywords=GPU;mining;rendering;training;NTK;wallet;
StartupWMClass=kminer
X-KMiner-Folder=$here
ENTRY
mv "$tmp" "$apps/kminer.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$apps" 2>/dev/null || true
echo "install-desktop: added $apps/kminer.desktop (runs $here/kminer)"
