"""A reader of the OpenEXR files Cycles writes (uncompressed scanline, single- or multi-part):
the photoreal engine's depth and object-index passes, without an OpenEXR library."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_EXR_TYPES = {0: np.uint32, 1: np.float16, 2: np.float32}


def _exr_header(data: bytes, pos: int) -> tuple[dict[str, tuple[str, bytes]], int]:
    attrs: dict[str, tuple[str, bytes]] = {}
    while data[pos] != 0:
        end = data.index(b"\0", pos)
        name = data[pos:end].decode()
        end2 = data.index(b"\0", end + 1)
        typ = data[end + 1:end2].decode()
        size = struct.unpack_from("<i", data, end2 + 1)[0]
        attrs[name] = (typ, data[end2 + 5:end2 + 5 + size])
        pos = end2 + 5 + size
    return attrs, pos + 1


def read_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Channels of an uncompressed scanline OpenEXR file, single- or multi-part (what
    Blender writes for a multilayer render with codec NONE), as {name: (H, W) array},
    rows top to bottom."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x76\x2f\x31\x01":
        raise ValueError("not an OpenEXR file")
    flags = struct.unpack_from("<I", data, 4)[0]
    multipart = bool(flags & 0x1000)
    pos = 8
    headers = []
    while True:
        attrs, pos = _exr_header(data, pos)
        headers.append(attrs)
        if not multipart or data[pos] == 0:
            break
    if multipart:
        pos += 1
    parts = []
    for attrs in headers:
        if attrs.get("type", ("", b"scanlineimage\0"))[1].rstrip(b"\0") not in (b"scanlineimage",):
            raise ValueError("only scanline OpenEXR files are read here")
        if struct.unpack_from("<B", attrs["compression"][1])[0] != 0:
            raise ValueError("compressed OpenEXR files are not read here")
        chans, raw, p = [], attrs["channels"][1], 0
        while raw[p] != 0:
            end = raw.index(b"\0", p)
            chans.append((raw[p:end].decode(), _EXR_TYPES[struct.unpack_from("<i", raw, end + 1)[0]]))
            p = end + 1 + 16
        x0, y0, x1, y1 = struct.unpack("<4i", attrs["dataWindow"][1])
        parts.append((chans, x1 - x0 + 1, y1 - y0 + 1, y0))
    for _chans, _w, h, _y0 in parts:
        pos += 8 * h  # offset tables: one scanline a chunk when uncompressed
    out: dict[str, np.ndarray] = {}
    for chans, w, h, _y0 in parts:
        for c, t in chans:
            out[c] = np.empty((h, w), t)
    for _ in range(sum(h for _c, _w, h, _y in parts)):
        part = 0
        if multipart:
            part = struct.unpack_from("<i", data, pos)[0]
            pos += 4
        chans, w, h, y0 = parts[part]
        y, _size = struct.unpack_from("<ii", data, pos)
        pos += 8
        for c, t in chans:
            out[c][y - y0] = np.frombuffer(data, t, w, pos)
            pos += w * np.dtype(t).itemsize
    return out
