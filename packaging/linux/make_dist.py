"""Turn the PyInstaller folder (dist/kminer) into a .tar.gz and a .deb, with SHA-256 sums.

    python3 packaging/linux/make_dist.py [--bundle dist/kminer] [--out dist]

Standard library only, so it runs with any python3 (>= 3.9) on the build machine. The .deb
installs the bundle under /usr/lib/knowledge-miner, links /usr/bin/kminer to it and adds a
desktop entry and the icon under /usr/share. It owns no path outside those (not /opt, whose
removal dpkg used to warn about; every folder above ours belongs to the base system): the user's
wallet, chain, jobs and settings live in the user's platformdirs folders (~/.local/share,
~/.config), which installing, upgrading or removing the package never touches.

Depends: the runtime list of packaging/debian-deps.sh (bubblewrap goes to Recommends: without
it jobs run in the `basic` sandbox), and a libc6 at least as new as the build machine's,
since the bundled Python and libraries were linked against it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
from bundle_manifest import APP_NAME, app_version  # noqa: E402

PACKAGE = "knowledge-miner"
INSTALL_DIR = "/usr/lib/knowledge-miner"
FLAVORS = ("cpu", "cuda")  # the CPU bundle, and the GPU one with a CUDA build of torch
RECOMMENDS = ("bubblewrap",)
MAINTAINER = "Knowledge Miner developers <kminer@localhost>"
DESCRIPTION = ("sell GPU rendering and model training for NTK",
               "Knowledge Miner turns a GPU rig into a knowledge-mining node: it renders\n"
               "synthetic, labelled training images and trains neural networks for buyers,\n"
               "paid in the ERC-20 token NTK from escrow. Jobs run in a bubblewrap sandbox.\n"
               "Desktop app (Qt) and a headless command line (kminer --help).")

DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Version=1.5
Name=Knowledge Miner
GenericName=GPU knowledge mining
Comment=Sell synthetic-data rendering and model training from your GPUs for NTK
Exec=/usr/bin/kminer
Icon=kminer
Terminal=false
Categories=Utility;Science;
Keywords=GPU;mining;rendering;training;NTK;wallet;
StartupWMClass=kminer
"""

# Only caches are refreshed; the user's data is never touched (see the module docstring).
POSTINST = """#!/bin/sh
set -e
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q /usr/share/applications || true; fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true; fi
exit 0
"""
# The optional photoreal engine (`sudo kminer photoreal install`: bpy, GPL-3.0) lives in
# INSTALL_DIR/photoreal, which dpkg does not own: removing the package takes it too (before dpkg
# removes the package's files, so the folder goes without a "not empty" warning); an upgrade
# keeps it.
PRERM = f"""#!/bin/sh
set -e
case "$1" in
  remove) rm -rf {INSTALL_DIR}/photoreal ;;
esac
exit 0
"""
POSTRM = """#!/bin/sh
# Removes nothing but what the package installed: wallets, chain and job data live in each
# user's own folders (~/.local/share/knowledge-miner, ~/.config/knowledge-miner) and stay there, even on purge.
set -e
if command -v update-desktop-database >/dev/null 2>&1; then update-desktop-database -q /usr/share/applications || true; fi
exit 0
"""


def runtime_deps(root: Path = ROOT) -> list[str]:
    """The runtime list of packaging/debian-deps.sh, in its order."""
    out = subprocess.run(["bash", str(root / "packaging" / "debian-deps.sh"), "list-runtime"],
                         capture_output=True, text=True, check=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def libc_version() -> str | None:
    """The build machine's glibc as "2.36", or None when it cannot be told (not glibc)."""
    try:
        name, ver = os.confstr("CS_GNU_LIBC_VERSION").split()  # "glibc 2.36"
    except (AttributeError, ValueError, OSError):
        return None
    return ver if name == "glibc" and re.fullmatch(r"\d+\.\d+", ver) else None


def depends_line(deps: list[str], libc: str | None) -> tuple[str, str]:
    """(Depends, Recommends) field values."""
    req = [d for d in deps if d not in RECOMMENDS]
    if libc:
        req.insert(0, f"libc6 (>= {libc})")
    rec = [d for d in deps if d in RECOMMENDS]
    return ", ".join(req), ", ".join(rec)


def package_name(flavor: str = "cpu") -> str:
    """knowledge-miner (CPU bundle) or knowledge-miner-cuda (GPU bundle): one replaces the other."""
    return PACKAGE if flavor == "cpu" else f"{PACKAGE}-{flavor}"


def control_text(version: str, arch: str, installed_kib: int, depends: str, recommends: str,
                 flavor: str = "cpu") -> str:
    """The DEBIAN/control file (deb-control(5)): one paragraph, long description indented."""
    short, long = DESCRIPTION
    if flavor != "cpu":
        short = f"{short} (GPU build, CUDA)"
        long = long + "\nThis is the GPU build: its torch uses CUDA (NVIDIA driver >= 580.65.06)."
    body = "\n".join(" " + (line if line.strip() else ".") for line in long.splitlines())
    other = PACKAGE if flavor != "cpu" else f"{PACKAGE}-cuda"
    fields = [("Package", package_name(flavor)), ("Version", version), ("Architecture", arch), ("Maintainer", MAINTAINER),
              ("Installed-Size", str(installed_kib)), ("Depends", depends), ("Recommends", recommends),
              ("Conflicts", other), ("Replaces", other),
              ("Section", "utils"), ("Priority", "optional")
              ]
    lines = [f"{k}: {v}" for k, v in fields if v]
    lines.append(f"Description: {short}")
    return "\n".join(lines) + "\n" + body + "\n"


def dir_kib(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return (total + 1023) // 1024


def dpkg_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def stage_deb(bundle: Path, stage: Path, version: str, arch: str, deps: list[str], libc: str | None,
              flavor: str = "cpu") -> Path:
    """Lay out the package tree under `stage` (emptied first); returns `stage`."""
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / INSTALL_DIR.lstrip("/")
    shutil.copytree(bundle, opt, symlinks=True)
    (stage / "usr/bin").mkdir(parents=True)
    os.symlink(f"{INSTALL_DIR}/{APP_NAME}", stage / "usr/bin" / APP_NAME)
    apps = stage / "usr/share/applications"
    apps.mkdir(parents=True)
    (apps / f"{APP_NAME}.desktop").write_text(DESKTOP_ENTRY, encoding="utf-8")
    icons = stage / "usr/share/icons/hicolor/scalable/apps"
    icons.mkdir(parents=True)
    shutil.copy2(ROOT / "resources/icons/kminer.svg", icons / f"{APP_NAME}.svg")
    doc = stage / f"usr/share/doc/{package_name(flavor)}"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(f"Knowledge Miner {version}\nLicense: MIT\n"
                                   "The bundle carries Python, Qt (LGPLv3), PyTorch (BSD) and other libraries "
                                   "under their own licenses.\n", encoding="utf-8")
    depends, recommends = depends_line(deps, libc)
    ctl = stage / "DEBIAN"
    ctl.mkdir()
    (ctl / "control").write_text(control_text(version, arch, dir_kib(stage), depends, recommends, flavor), encoding="utf-8")
    for name, text in (("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)):
        (ctl / name).write_text(text, encoding="utf-8")
        (ctl / name).chmod(0o755)
    for d in [stage, *(p for p in stage.rglob("*") if p.is_dir() and not p.is_symlink())]:
        d.chmod(0o755)
    return stage


def build_deb(stage: Path, out: Path, compress: str = "xz") -> Path:
    cmd = ["dpkg-deb", "--root-owner-group", f"-Z{compress}", "--build", str(stage), str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out


def build_tar(bundle: Path, out: Path, version: str) -> Path:
    """A portable .tar.gz: the bundle plus the icon, `install-desktop.sh` (a desktop entry in
    the user's menu that runs this folder's kminer by its full path) and `uninstall.sh`,
    under one top folder."""
    top = f"{PACKAGE}-{version}"

    def clean(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=top, filter=clean)
        for src, name, mode in ((ROOT / "resources/icons/kminer.svg", f"share/{APP_NAME}.svg", 0o644),
                                (HERE / "install-desktop.sh", "install-desktop.sh", 0o755),
                                (HERE / "uninstall.sh", "uninstall.sh", 0o755)):
            info = tarfile.TarInfo(f"{top}/{name}")
            data = src.read_bytes()
            info.size, info.mode = len(data), mode
            tar.addfile(clean(info), io.BytesIO(data))
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(files: list[Path], out_dir: Path) -> Path:
    """`NAME.sha256` beside each file and one SHA256SUMS (sha256sum -c format); returns SHA256SUMS."""
    lines = []
    for f in files:
        line = f"{sha256(f)}  {f.name}\n"
        (f.parent / (f.name + ".sha256")).write_text(line, encoding="utf-8")
        lines.append(line)
    sums = out_dir / "SHA256SUMS"
    sums.write_text("".join(lines), encoding="utf-8")
    return sums


def _other_packages(out: Path, made: list[Path]) -> set[Path]:
    """Packages of the other flavor already in `out`, so SHA256SUMS covers both bundles."""
    return {p for p in out.glob(f"{PACKAGE}*") if p.suffix in (".deb", ".gz") and p not in made}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=ROOT / "dist" / APP_NAME)
    ap.add_argument("--out", type=Path, default=ROOT / "dist")
    ap.add_argument("--stage", type=Path, default=None,
                    help="the .deb's staging folder (default build/deb-root-FLAVOR: a CPU and a GPU build may run at once)")
    ap.add_argument("--flavor", default="cpu", choices=FLAVORS,
                    help="cpu (default) or cuda: the GPU bundle, named ...-cuda")
    ap.add_argument("--compress", default=os.environ.get("KMINER_DEB_COMPRESS", "xz"), choices=["xz", "gzip", "zstd", "none"])
    args = ap.parse_args(argv)
    exe = args.bundle / APP_NAME
    if not exe.is_file():
        print(f"make_dist: no bundle at {args.bundle} (run pyinstaller first: make package)", file=sys.stderr)
        return 1
    version, arch = app_version(), dpkg_arch()
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.flavor == "cpu" else f"-{args.flavor}"
    tar = build_tar(args.bundle, args.out / f"{PACKAGE}-{version}-linux-{arch}{suffix}.tar.gz", version)
    print(f"make_dist: {tar} ({tar.stat().st_size / 2**20:.1f} MiB)")
    made = [tar]
    if shutil.which("dpkg-deb"):
        stage = stage_deb(args.bundle, args.stage or ROOT / "build" / f"deb-root-{args.flavor}", version, arch,
                          runtime_deps(), libc_version(), args.flavor)
        deb = build_deb(stage, args.out / f"{package_name(args.flavor)}_{version}_{arch}.deb", args.compress)
        shutil.rmtree(stage)
        print(f"make_dist: {deb} ({deb.stat().st_size / 2**20:.1f} MiB)")
        made.append(deb)
    else:
        print("make_dist: dpkg-deb not found: no .deb made (Debian/Ubuntu: apt install dpkg-dev)")
    sums = write_checksums(sorted(set(made) | _other_packages(args.out, made)), args.out)
    print(f"make_dist: {sums}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
