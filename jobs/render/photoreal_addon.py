"""The photoreal engine as an optional component of the bundles (issues 22 and 23).

The bundles (.tar.gz, .deb, HiveOS) do not carry Blender's `bpy` (GPL-3.0, a 374 MB wheel;
the rest of the project is MIT). A bundle looks for it in one place, next to its own
executable: `<bundle>/photoreal/site-packages/`. Whatever is there is added to the end of
`sys.path` by the frozen entry (`activate`), so the GUI, the CLI, the benchmark child and the
sandboxed job worker (which sees the bundle folder read-only) all find the same bpy; bpy's
own dependencies (numpy, requests) are the bundle's.

It gets there one of two ways:
- `kminer photoreal install`: downloads the pinned wheel from PyPI (BPY_URL; or `--wheel FILE`),
  checks its sha256 against `BPY_SHA256`, unpacks it into a new folder and renames it into
  place (nothing half-written: a failed install leaves the old state). A .tar.gz install is
  the user's own folder; for the .deb it needs root (`sudo kminer photoreal install`).
- `kminer photoreal remove` takes it out again (the .deb's postrm removes it with the package).

Without it, `status()` gives the one line that says so and how to add it; the miner then does
not offer photoreal renders (app.miner refuses such jobs with that line). In a source checkout
the same engine is the `photoreal` extra (`pip install 'knowledge-miner[photoreal]'`).

Standard library only: the frozen entry imports this before anything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

BPY_VERSION = "5.0.1"
BPY_WHEEL = f"bpy-{BPY_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
BPY_SHA256 = "79c6e421f53ea24a5961d86eefb8141798eee708682415eb4f5a952c2abdeb8b"
BPY_MIB = 357  # the wheel's size (374,257,847 bytes); unpacked about 1.1 GiB
# PyPI's address of that file (content-addressed and permanent; the simple index lists the same
# sha256): the download is checked against BPY_SHA256 whatever the address serves
BPY_URL = ("https://files.pythonhosted.org/packages/79/62/bdc90f457acc6a82325f563c2b87cd57f5c3d6a7de2e23fdba8e640c9437/"
           + BPY_WHEEL)
ADDON_FOLDER = "photoreal"
MARKER = "kminer-photoreal.json"


class AddonError(RuntimeError):
    """One line a user can act on (bad wheel, wrong hash, no space, no write access)."""


def bundle_dir() -> Path | None:
    """The frozen bundle's folder (where `kminer` lives), None when running from source."""
    if not getattr(sys, "frozen", False):
        return None
    return Path(sys.executable).resolve().parent


def addon_root(bundle: Path | None = None) -> Path | None:
    """`<bundle>/photoreal`, or None from source (there the engine is a pip extra)."""
    b = bundle if bundle is not None else bundle_dir()
    return None if b is None else b / ADDON_FOLDER


def site_dir(root: Path) -> Path:
    return root / "site-packages"


def activate(root: Path | None = None) -> Path | None:
    """Put an installed add-on's site-packages at the end of sys.path (bundle modules win)."""
    root = root if root is not None else addon_root()
    if root is None:
        return None
    sp = site_dir(root)
    if not (sp / "bpy").is_dir():
        return None
    if str(sp) not in sys.path:
        sys.path.append(str(sp))
    return sp


def install_hint() -> str:
    """How to add the engine, for the one line (frozen bundle or source checkout)."""
    if bundle_dir() is None:
        return "pip install 'knowledge-miner[photoreal]' adds it"
    return (f"`kminer photoreal install` adds it (Blender's bpy {BPY_VERSION}, GPL-3.0, "
            f"a {BPY_MIB} MiB download)")


def not_installed_line() -> str:
    return (f"photoreal engine not installed: {install_hint()}; "
            "until then this rig offers only the fast render engine")


def status() -> tuple[bool, str]:
    """(installed, one line). Finds bpy without importing it (an import takes about 1 s)."""
    import importlib.metadata as md
    import importlib.util

    activate()
    try:
        spec = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return False, not_installed_line()
    try:
        version = md.version("bpy")
    except md.PackageNotFoundError:
        version = "unknown version"
    where = Path(spec.origin or "").parent.parent if spec.origin else None
    return True, f"photoreal engine: Blender bpy {version} (Cycles), in {where}"


def available() -> bool:
    return status()[0]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ssl_context():
    """The system's certificate store (which holds a company proxy's CA where there is one);
    certifi's bundle only where the system has none."""
    import ssl

    ctx = ssl.create_default_context()
    if ctx.cert_store_stats().get("x509_ca", 0) == 0 and not os.path.isdir(ssl.get_default_verify_paths().capath or ""):
        try:
            import certifi  # bundled with requests

            ctx = ssl.create_default_context(cafile=certifi.where())
        except ImportError:
            pass
    return ctx


def download(url: str, dest: Path, progress: Callable[[int, int], None] | None = None,
             timeout: float = 60.0) -> Path:
    import urllib.request

    import urllib.error

    ctx = _ssl_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r, open(dest, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            while block := r.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        raise AddonError(f"download of {url.rsplit('/', 1)[-1]} failed: {why}; not installed "
                         "(or download it yourself and run `kminer photoreal install --wheel FILE`)") from None
    return dest


def _check_members(z: zipfile.ZipFile) -> int:
    """Every member stays inside the folder (no absolute paths, no ..); returns unpacked bytes."""
    size = 0
    for info in z.infolist():
        p = Path(info.filename)
        if p.is_absolute() or ".." in p.parts or info.filename.startswith(("/", "\\")):
            raise AddonError(f"wheel member {info.filename!r} points outside its folder; not installed")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise AddonError(f"wheel member {info.filename!r} is a link; not installed")
        size += info.file_size
    names = {n.split("/", 1)[0] for n in z.namelist()}
    if "bpy" not in names:
        raise AddonError("the wheel holds no bpy package; not installed")
    return size


def install(wheel: Path | None = None, *, root: Path | None = None, url: str | None = None,
            sha256: str = BPY_SHA256, progress: Callable[[int, int], None] | None = None) -> Path:
    """Install the bpy wheel as the add-on (see the module doc); returns its site-packages.
    `wheel`: a local file; else `url` (default: BPY_URL, PyPI's address of the pinned wheel)."""
    root = root if root is not None else addon_root()
    if root is None:
        raise AddonError("running from source: pip install 'knowledge-miner[photoreal]' instead")
    parent = root.parent
    if not parent.is_dir():
        raise AddonError(f"no folder {parent}; not installed")
    if not os.access(parent, os.W_OK):
        raise AddonError(f"cannot write to {parent} (installed by the system package?): "
                         "run `sudo kminer photoreal install`")
    work = Path(tempfile.mkdtemp(prefix=".photoreal-new-", dir=parent))
    try:
        if wheel is None:
            wheel = download(url or BPY_URL, work / BPY_WHEEL, progress)
        elif not Path(wheel).is_file():
            raise AddonError(f"no wheel at {wheel}")
        got = sha256_file(Path(wheel))
        if got != sha256:
            raise AddonError(f"{Path(wheel).name}: sha256 {got[:16]}... is not the pinned bpy {BPY_VERSION} "
                             f"wheel ({sha256[:16]}...); not installed")
        try:
            z = zipfile.ZipFile(wheel)
        except zipfile.BadZipFile:
            raise AddonError(f"{Path(wheel).name} is not a wheel (zip); not installed") from None
        with z:
            need = _check_members(z)
            free = shutil.disk_usage(parent).free
            if free < need + (64 << 20):
                raise AddonError(f"{need / 2**30:.1f} GiB needed in {parent}, {free / 2**30:.1f} GiB free; not installed")
            sp = site_dir(work / "root")
            for info in z.infolist():
                z.extract(info, sp)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    os.chmod(sp / info.filename, mode | 0o444)
        (work / "root" / MARKER).write_text(json.dumps(
            {"package": "bpy", "version": BPY_VERSION, "wheel": Path(wheel).name, "sha256": got,
             "license": "GPL-3.0-or-later (Blender); the rest of Knowledge Miner is MIT"}, indent=1) + "\n")
        os.chmod(work / "root", 0o755)
        old = None
        if root.exists():
            old = parent / f".photoreal-old-{os.getpid()}"
            os.rename(root, old)
        os.rename(work / "root", root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return site_dir(root)


def remove(root: Path | None = None) -> bool:
    """Take the add-on out; False when there was none."""
    root = root if root is not None else addon_root()
    if root is None or not root.exists():
        return False
    if not os.access(root.parent, os.W_OK):
        raise AddonError(f"cannot write to {root.parent}: run `sudo kminer photoreal remove`")
    gone = root.parent / f".photoreal-old-{os.getpid()}"
    os.rename(root, gone)
    shutil.rmtree(gone, ignore_errors=True)
    return True
