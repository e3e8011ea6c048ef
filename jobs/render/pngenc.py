"""A lean PNG encoder for rendered frames: one fixed row filter in NumPy, then zlib.

Pillow tries all five PNG filters on every row and keeps the best; on a 640x480 RGB frame
that is most of its ~12 ms per image here. Renders compress almost as well with one fixed
filter (Sub for colour, Up for depth and masks: +15 % bytes on RGB, less on masks), at
about a third of the CPU time, and the encoder's cost is what the writer threads take away
from rendering. Output is a standard PNG (8-bit grey/RGB/RGBA or 16-bit grey) that any
reader loads; the bytes depend only on the pixels, the filter and the zlib level, so
encoding is deterministic. zlib and the NumPy filtering release the GIL (safe on writer
threads).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILTER_SUB, FILTER_UP = 1, 2
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(img: np.ndarray, *, filter_type: int = FILTER_SUB, level: int = 1) -> bytes:
    """PNG bytes of `img`: (H, W) or (H, W, C) uint8 (C = 1..4), or (H, W) uint16.

    `filter_type` is FILTER_SUB (left neighbour; best for photos) or FILTER_UP (row above;
    best for depth and label masks); `level` the zlib level (1 fastest).
    """
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in _COLOR_TYPE or a.dtype not in (np.uint8, np.uint16) or (a.dtype == np.uint16 and a.shape[2] != 1):
        raise ValueError(f"cannot encode an array of shape {img.shape} and dtype {img.dtype} as PNG")
    h, w, c = a.shape
    if a.dtype == np.uint16:
        rows, bpp, depth = a.astype(">u2").view(np.uint8).reshape(h, w * 2), 2, 16
    else:
        rows, bpp, depth = np.ascontiguousarray(a).reshape(h, w * c), c, 8
    out = np.empty((h, rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = filter_type
    body = out[:, 1:]
    if filter_type == FILTER_SUB:
        body[:, :bpp] = rows[:, :bpp]
        np.subtract(rows[:, bpp:], rows[:, :-bpp], out=body[:, bpp:])
    elif filter_type == FILTER_UP:
        body[0] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=body[1:])
    else:
        raise ValueError(f"unsupported PNG filter {filter_type}")
    z = zlib.compressobj(level, zlib.DEFLATED, 15, 9)
    idat = z.compress(out) + z.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, depth, _COLOR_TYPE[c] if depth == 8 else 0, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
