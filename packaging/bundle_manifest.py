"""What goes into the bundle: data files, hidden imports, exclusions, version.

Plain Python with no PyInstaller import, so `packaging/kminer.spec` and the unit tests in
tests/packaging read the same lists. Paths are relative to the repository root; destination
folders are relative to the bundle's `_internal/` (`sys._MEIPASS`), laid out as in the source
tree so `Path(__file__)`-relative lookups (wallet/artifacts, resources/schemas) and
`app.resources.resources_dir()` work unchanged.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "kminer"

# Our packages: engines and CLI commands are imported by name (ENGINES, COMMAND_MODULES),
# so the import graph alone would miss them; every submodule goes in.
OUR_PACKAGES = ("cli", "app", "ui", "gpu", "jobs", "wallet", "common")

# Third-party packages that import their own parts from strings (py-evm's VM forks and gas
# estimators, eth-tester's backends): every submodule goes in.
THIRD_PARTY_SUBMODULES = ("eth", "eth_tester")

# Data folders copied whole (minus caches); resources/models holds the demo models once they land.
DATA_DIRS = ("resources",)
# Compiled contracts the app deploys or decodes errors with (test contracts stay out).
ARTIFACT_DIR = "wallet/artifacts"
TEST_ARTIFACTS = ("HostileToken.json",)
SKIP_NAMES = ("__pycache__", ".DS_Store")
SKIP_SUFFIXES = (".pyc", ".pyo")

# Packages whose non-Python files are needed at run time.
PACKAGE_DATA = (
    "pyrender",  # shaders/ and fonts/
    "trimesh",  # resources/ (units, templates)
    "eth_account",  # hdaccount/wordlist/*.txt: the recovery phrase words (`wallet create`)
)

# Distributions whose metadata is read at run time (`importlib.metadata.version(...)` at
# import in web3, eth-tester, py-evm's trie and eth-bloom...): copied with their requirements.
METADATA_RECURSIVE = ("web3", "py-evm", "eth-tester", "eth-account")

# Distributions whose version our own code reads (`importlib.metadata.version`), copied without
# their requirements: the renderer's OSMesa fallback needs PyOpenGL >= 3.1.5 and refuses an
# unknown version; a render card's software stack (jobs.render.dataset.software_versions) decides
# whether a buyer's verify compares exactly, so a bundle must report the same versions as a
# source install; the About dialog lists the rest.
METADATA_PLAIN = ("PyOpenGL", "pyrender", "pillow", "numpy", "trimesh", "pycocotools", "pydantic",
                  "knowledge-miner", "torch", "safetensors", "PySide6-Essentials", "nvidia-ml-py")

# Loaded by name at run time (PyOpenGL picks its platform from PYOPENGL_PLATFORM; pyrender
# imports its offscreen platform lazily), so PyInstaller's import scan cannot see them.
GL_HIDDEN_LINUX = (
    "OpenGL.platform.egl",
    "OpenGL.platform.osmesa",
    "OpenGL.platform.glx",
    "OpenGL.raw.EGL",
    "OpenGL.EGL",
    "OpenGL.osmesa",
    "OpenGL.raw.osmesa.mesa",
    "pyrender.platforms.egl",
    "pyrender.platforms.osmesa",
)
GL_HIDDEN_WINDOWS = ("OpenGL.platform.win32", "pyrender.platforms.pyglet_platform")

# Standard-library modules a buyer's `python` job may import although our code does not.
# A bundle only carries what the analysis found, so the set buyer code can rely on is named
# here (and in packaging/README.md).
BUYER_STDLIB = (
    "array", "base64", "bisect", "calendar", "cmath", "collections", "colorsys", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "functools", "gzip",
    "hashlib", "heapq", "hmac", "io", "itertools", "json", "math", "operator", "pathlib", "pickle",
    "pprint", "random", "re", "secrets", "shutil", "statistics", "string", "struct", "tarfile",
    "tempfile", "textwrap", "time", "typing", "uuid", "zipfile", "zlib",
)

# Left out to keep the bundle lean: test and build tooling, GUIs we do not use, torch parts
# that only its own test suite or TensorBoard need.
EXCLUDES = (
    "tkinter", "_tkinter", "turtle", "idlelib", "lib2to3", "pydoc_data",
    "torchvision", "torchaudio", "tensorboard", "torch.utils.tensorboard",
    "matplotlib", "IPython", "jupyter_client", "notebook",
    "pytest", "_pytest", "pytestqt", "pytest_timeout", "importlinter", "grimp",
    "PyInstaller", "pip", "keyrings.alt",
    # the photoreal engine is an optional add-on (GPL-3.0, 374 MB), never bundled even from a
    # venv with the photoreal extra: `kminer photoreal install` (jobs/render/photoreal_addon.py)
    "bpy",
)

# PySide6 modules we never import; excluded so no hook pulls them in (QtCharts is used: the Earnings page).
QT_EXCLUDES = (
    "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets", "PySide6.QtWebEngineQuick", "PySide6.Qt3DCore",
    "PySide6.QtQuick", "PySide6.QtQml", "PySide6.QtMultimedia", "PySide6.QtPdf",
    "PySide6.QtDataVisualization", "PySide6.QtGraphs", "PySide6.QtDesigner", "PySide6.QtBluetooth",
    "PySide6.QtLocation", "PySide6.QtPositioning", "PySide6.QtSensors", "PySide6.QtSerialPort",
    "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtHelp", "PySide6.QtSpatialAudio", "PySide6.QtTextToSpeech",
)


# Files the hooks collect that we never load (destination paths in the bundle, fnmatch
# patterns): torch's own C++ tests and extension-build files (~140 MB), Qt's virtual keyboard.
DROP_FROM_BUNDLE = (
    "torch/test/*", "torch/include/*", "torch/share/*",
    # torch/bin: its C++ test programs and protoc; torch_shm_manager stays (DataLoader, shared memory).
    "torch/bin/*test*", "torch/bin/*Test", "torch/bin/protoc*", "torch/bin/*.pt", "torch/bin/*.ptl",
    "torch/lib/libjitbackend_test.so", "torch/lib/libtorchbind_test.so", "torch/lib/libbackend_with_compiler.so",
    "torch/lib/libaoti_custom_ops.so", "torch/lib/*test*.dll", "torch/lib/*.lib",
    # Qt's virtual-keyboard input method (used only with QT_IM_MODULE=qtvirtualkeyboard) and the
    # Qt Quick/QML libraries nothing else needs: ~17 MB. Compose and IBus input methods stay.
    "PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
    "PySide6/Qt/lib/libQt6VirtualKeyboard*", "PySide6/Qt/lib/libQt6Quick*", "PySide6/Qt/lib/libQt6Qml*",
    # The Wayland platform (it needs libwayland-*, which the .deb did not declare): Qt's xcb
    # platform runs under XWayland on every Wayland desktop. Platforms for kiosks and embedded
    # boards (eglfs, linuxfb, vnc, vkkhrdisplay, minimal) and Qt's translations go too: xcb for
    # desktops and offscreen for headless use stay.
    "PySide6/Qt/plugins/platforms/libqwayland*", "PySide6/Qt/plugins/wayland-*", "PySide6/Qt/lib/libQt6Wayland*",
    "PySide6/Qt/plugins/platforms/libqeglfs.so", "PySide6/Qt/plugins/platforms/libqlinuxfb.so",
    "PySide6/Qt/plugins/platforms/libqvnc.so", "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so",
    "PySide6/Qt/plugins/platforms/libqminimal*.so", "PySide6/Qt/plugins/egldeviceintegrations/*",
    "PySide6/Qt/lib/libQt6EglFs*", "PySide6/Qt/translations/*",
)


# Linux system libraries the bundle must take from the system, not from the build root: the
# system's graphics stack loads them too. Built in the Debian 11 root, a bundle that carried
# its libstdc++ (GCC 10) broke EGL on every newer system: Mesa's swrast_dri.so needs
# GLIBCXX_3.4.29, and the bundled copy shadowed the system's ("DRI2: failed to load driver").
# The build root is the oldest system supported, so the system's copy is always at least as
# new; each comes from a package in the .deb's Depends (packaging/debian-deps.sh) or an
# essential one, and package-test's "libraries" step checks that. Matched by file name
# anywhere in the bundle. Python's own libraries whose sonames newer systems dropped
# (libssl.so.1.1, libffi.so.7) stay bundled.
SYSTEM_LIBS = (
    # the C++ and GCC runtimes, compression and XML: Mesa's drivers and LLVM load them
    "libstdc++.so.6", "libgcc_s.so.1", "libexpat.so.1", "libz.so.1", "libzstd.so.1", "liblzma.so.5", "liblz4.so.1",
    # X11 and xcb (Mesa's EGL/GLX and Qt's xcb platform), fonts
    "libX11.so.6", "libX11-xcb.so.1", "libXau.so.6", "libXdmcp.so.6", "libXext.so.6", "libXss.so.1",
    "libxcb*.so.*", "libxkbcommon.so.0", "libxkbcommon-x11.so.0", "libbsd.so.0", "libmd.so.0",
    "libfontconfig.so.1", "libfreetype.so.6", "libpng16.so.16",
    # GLib and D-Bus (Qt's event loop, input methods, the tray) and what they load
    "libglib-2.0.so.0", "libgobject-2.0.so.0", "libgio-2.0.so.0", "libgmodule-2.0.so.0", "libgthread-2.0.so.0",
    "libdbus-1.so.3", "libsystemd.so.0", "libgcrypt.so.20", "libgpg-error.so.0", "libmount.so.1", "libblkid.so.1",
    "libselinux.so.1", "libpcre2-8.so.0",
)


def is_system_lib(dest: str) -> bool:
    """True for a bundle path that is one of SYSTEM_LIBS (taken from the system). Only the
    top level, where PyInstaller puts the system libraries it found: the copies wheels vendor
    (pillow.libs/libxcb-<hash>.so.1...) have their own names and stay."""
    from fnmatch import fnmatch

    d = dest.replace("\\", "/")
    return "/" not in d and any(fnmatch(d, pat) for pat in SYSTEM_LIBS)


def keep_in_bundle(dest: str) -> bool:
    """False for a bundle path (as PyInstaller's TOC names it) matching DROP_FROM_BUNDLE."""
    from fnmatch import fnmatch

    d = dest.replace("\\", "/")
    return not any(fnmatch(d, pat) for pat in DROP_FROM_BUNDLE)


def app_version(root: Path = ROOT) -> str:
    """`app.__version__`, read from app/__init__.py without importing the app."""
    text = (root / "app" / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    if not m:
        raise ValueError("app/__init__.py has no __version__")
    return m.group(1)


def _keep(path: Path) -> bool:
    return not any(part in SKIP_NAMES for part in path.parts) and path.suffix not in SKIP_SUFFIXES


def data_files(root: Path = ROOT) -> list[tuple[str, str]]:
    """(source file, destination folder) pairs for PyInstaller's `datas`, sorted."""
    out: list[tuple[str, str]] = []
    for d in DATA_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if p.is_file() and _keep(p.relative_to(root)):
                out.append((str(p), str(p.parent.relative_to(root)).replace("\\", "/")))
    art = root / ARTIFACT_DIR
    for p in sorted(art.glob("*.json")):
        if p.name not in TEST_ARTIFACTS:
            out.append((str(p), ARTIFACT_DIR))
    return out


def gl_hidden_imports(platform: str = sys.platform) -> tuple[str, ...]:
    return GL_HIDDEN_WINDOWS if platform == "win32" else GL_HIDDEN_LINUX


def excludes() -> list[str]:
    return list(EXCLUDES) + list(QT_EXCLUDES)


# --- stripping (Linux) ----------------------------------------------------------------------
# PyInstaller's own strip=True runs `strip` on every binary, which breaks the libraries
# auditwheel vendored and patchelf rewrote (numpy.libs, scipy.libs, pillow.libs... and the
# extension modules whose RUNPATH points there): with bullseye's binutils 2.35, scipy's
# openblas then fails to load ("ELF load command address/offset not properly aligned"), so
# every job that touched scipy failed in the bundle. The spec therefore collects unstripped and
# calls strip_bundle(), which leaves those files as the wheels shipped them.
ELF_MAGIC = b"\x7fELF"


def _runpath(path: Path, readelf: str) -> str:
    import subprocess

    p = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True)
    return " ".join(ln for ln in p.stdout.splitlines() if "RPATH" in ln or "RUNPATH" in ln)


def strip_reason(path: Path, bundle: Path, readelf: str = "readelf") -> str | None:
    """Why `path` (an ELF file in the bundle) must not be stripped, or None to strip it."""
    import subprocess

    rel = path.relative_to(bundle)
    if any(part.endswith(".libs") for part in rel.parts[:-1]):
        return "vendored by auditwheel (patchelf)"
    if "nvidia" in rel.parts[:-1] or "triton" in rel.parts[:-1]:
        return "CUDA libraries as NVIDIA/triton ship them (no GPU here to check a rewritten one)"
    if ".libs" in _runpath(path, readelf):
        return "RUNPATH rewritten by auditwheel (patchelf)"
    sections = subprocess.run([readelf, "-S", "--wide", str(path)], capture_output=True, text=True).stdout
    if " .symtab " not in sections and " .debug_info " not in sections:
        return "already stripped"
    return None


def strip_bundle(bundle: Path, strip: str = "strip", readelf: str = "readelf") -> dict:
    """Strip the ELF files of a built bundle in place, except those strip_reason() keeps.
    Returns counts and the bytes saved."""
    import subprocess

    done = kept = saved = 0
    for p in sorted(bundle.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue
        with open(p, "rb") as f:
            if f.read(4) != ELF_MAGIC:
                continue
        if strip_reason(p, bundle, readelf):
            kept += 1
            continue
        before = p.stat().st_size
        subprocess.run([strip, str(p)], check=True, capture_output=True)
        saved += before - p.stat().st_size
        done += 1
    return {"stripped": done, "kept": kept, "saved_bytes": saved}
