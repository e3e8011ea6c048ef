"""The HiveOS custom-miner package: `kminer-VERSION.tar.gz` (or `kminer-VERSION-cuda.tar.gz`
from the GPU bundle) with one top folder `kminer/`: HiveOS's scripts (h-manifest.conf,
h-config.sh, h-run.sh, h-stats.sh and kminer-stats.awk) and the bundle under `kminer/app/`.

    python3 packaging/hiveos/make_hiveos.py [--bundle dist/kminer] [--out dist] [--flavor cpu|cuda]

HiveOS wants the archive named NAME-VERSION.tar.gz holding the folder NAME (its install URL
unpacks it into /hive/miners/custom/). Standard library only.
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from bundle_manifest import app_version  # noqa: E402

NAME = "kminer"
SCRIPTS = ("h-manifest.conf", "h-config.sh", "h-run.sh", "h-stats.sh", "kminer-stats.awk", "README.md")


def package_version(version: str, flavor: str = "cpu") -> str:
    return version if flavor == "cpu" else f"{version}-{flavor}"


def build(bundle: Path, out: Path, version: str, flavor: str = "cpu") -> Path:
    """Write NAME-VERSION.tar.gz into `out`; returns its path."""
    pv = package_version(version, flavor)
    path = out / f"{NAME}-{pv}.tar.gz"

    def clean(ti: tarfile.TarInfo) -> tarfile.TarInfo:
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        return ti

    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for name in SCRIPTS:
            data = (HERE / name).read_bytes()
            if name == "h-manifest.conf":
                data = data.replace(b"@VERSION@", pv.encode())
            info = tarfile.TarInfo(f"{NAME}/{name}")
            info.size, info.mode = len(data), 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(clean(info), io.BytesIO(data))
        tar.add(bundle, arcname=f"{NAME}/app", filter=clean)
    return path


def main(argv: list[str] | None = None) -> int:
    root = HERE.parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=root / "dist" / "kminer")
    ap.add_argument("--out", type=Path, default=root / "dist")
    ap.add_argument("--flavor", default="cpu", choices=("cpu", "cuda"))
    args = ap.parse_args(argv)
    if not (args.bundle / "kminer").is_file():
        print(f"make_hiveos: no bundle at {args.bundle} (run make package first)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    path = build(args.bundle, args.out, app_version(), args.flavor)
    print(f"make_hiveos: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
