#!/usr/bin/env bash
# Installs the Debian packages Knowledge Miner needs, when they are missing.
#   debian-deps.sh runtime   EGL/Mesa for rendering (and bpy's X libraries), bubblewrap and libseccomp2 for the strict sandbox, Qt's xcb libraries
#   debian-deps.sh test      runtime + Xvfb and a tray host for GUI tests
#   debian-deps.sh list-runtime   print the runtime list (no install)
# As root it runs apt-get and says what it installs; otherwise it prints the command to run.
set -euo pipefail
runtime=(libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 libgl1 libosmesa6 bubblewrap libseccomp2
         libxcb-cursor0 libxcb-icccm4 libxcb-randr0 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
         libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxkbcommon0
         libdbus-1-3 libfontconfig1 libglib2.0-0 libxss1
         # pyglet's X libraries (pyrender imports pyglet); the photoreal engine's bpy wheel (Blender)
         # links libxi6 libxxf86vm1 libxfixes3 libxrender1 libsm6 even headless
         libxrender1 libxext6 libxi6 libxinerama1 libxxf86vm1 libxrandr2 libxfixes3 libsm6
         # libraries the bundle takes from the system (bundle_manifest.SYSTEM_LIBS), not from its build root
         libstdc++6 libgcc-s1 libexpat1 zlib1g libzstd1 libx11-6 libx11-xcb1 libxcb1 libfreetype6 libpng16-16)
# iptables: the transport's NAT tests masquerade between network namespaces (tests/netlab.py)
test_extra=(xvfb xauth trayer xdotool iptables)
# list-runtime: print the runtime list, one a line (the .deb's Depends come from it)
[ "${1:-}" = list-runtime ] && { printf '%s\n' "${runtime[@]}"; exit 0; }
want=("${runtime[@]}")
[ "${1:-runtime}" = test ] && want+=("${test_extra[@]}")

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "debian-deps: not a Debian system; install EGL/Mesa, bubblewrap, libseccomp and Xvfb with your package manager." >&2
  exit 0
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "debian-deps: missing Debian packages: ${missing[*]}" >&2
  echo "debian-deps: run: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
echo "debian-deps: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "debian-deps: installed ${#missing[@]} packages"
