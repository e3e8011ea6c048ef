"""Windows build resources made at build time: the .ico and the version resource.

Used by packaging/kminer.spec on Windows only; importable (and tested) anywhere. The icon is
rendered from resources/icons/kminer.svg with Qt's SVG renderer at the sizes Windows shows
(16-256 px) and written as one .ico by Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path

ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_svg_png(svg: Path, size: int) -> bytes:
    """The SVG drawn into a transparent `size` x `size` PNG (bytes)."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    # QImage painting needs an application object; a QApplication (not a bare
    # QGuiApplication) so a process that later builds widgets (the test run) still can.
    _app = QApplication.instance() or QApplication([])
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG")
    img = QImage(size, size, QImage.Format.Format_ARGB32)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    renderer.render(p)
    p.end()
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    img.save(buf, "PNG")
    buf.close()
    return bytes(data)


def make_icon(svg: Path, out: Path) -> Path:
    """Write a multi-size .ico of `svg` to `out`; returns `out`."""
    from PIL import Image

    big = Image.open(io.BytesIO(render_svg_png(svg, max(ICO_SIZES)))).convert("RGBA")
    out.parent.mkdir(parents=True, exist_ok=True)
    big.save(out, format="ICO", sizes=[(s, s) for s in ICO_SIZES])
    return out


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """"0.1.0" -> (0, 1, 0, 0); pre-release tails ("0.2.0rc1") are dropped."""
    import re

    nums = [int(re.match(r"\d+", part).group()) for part in version.split(".")[:4] if re.match(r"\d+", part)]
    return tuple((nums + [0, 0, 0, 0])[:4])  # type: ignore[return-value]


def version_file_text(version: str) -> str:
    """A PyInstaller version-resource file (VSVersionInfo) for kminer.exe."""
    v = version_tuple(version)
    fields = {
        "CompanyName": "Knowledge Miner",
        "FileDescription": "Knowledge Miner",
        "FileVersion": version,
        "InternalName": "kminer",
        "LegalCopyright": "MIT License",
        "OriginalFilename": "kminer.exe",
        "ProductName": "Knowledge Miner",
        "ProductVersion": version,
    }
    strings = ",\n            ".join(f"StringStruct({k!r}, {val!r})" for k, val in fields.items())
    return f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={v}, prodvers={v}, mask=0x3f, flags=0x0, OS=0x40004, fileType=0x1,
                    subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
            {strings}])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""


def write_version_file(version: str, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(version_file_text(version), encoding="utf-8")
    return out
