"""What the About box and bug reports show: versions and folders (read without importing
heavy packages: versions come from package metadata)."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from importlib import metadata

from app import __version__
from app.paths import Paths

_PACKAGES = ("PySide6-Essentials", "torch", "pyrender", "trimesh", "web3", "py-evm", "nvidia-ml-py", "pydantic")


@dataclass(frozen=True)
class AboutInfo:
    version: str
    python: str
    platform: str
    packages: tuple[tuple[str, str], ...]
    log_dir: str
    data_dir: str
    config_dir: str


def about_info(paths: Paths) -> AboutInfo:
    pkgs = []
    for name in _PACKAGES:
        try:
            pkgs.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            pkgs.append((name, "not installed"))
    return AboutInfo(
        version=__version__,
        python=sys.version.split()[0],
        platform=platform.platform(terse=True),
        packages=tuple(pkgs),
        log_dir=str(paths.log_dir),
        data_dir=str(paths.data_dir),
        config_dir=str(paths.config_dir),
    )
