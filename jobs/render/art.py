"""Label art for products and price-tag strips, generated with Pillow from a seed.

The art of an asset depends only on the scene spec (asset name, art seed, text, palette),
never on the frame seed, so a product class keeps its look across a dataset, as an SKU
does on a real shelf. Images are RGB uint8 arrays, at most 512 px on a side.
"""

from __future__ import annotations

import colorsys
import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_SIDE = 512


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    import importlib.util

    # pyrender ships OpenSans, so the art looks the same wherever pyrender runs; find it
    # without importing pyrender (that would pick the GL platform too early)
    spec = importlib.util.find_spec("pyrender")
    name = "OpenSans-ExtraBold.ttf" if bold else "OpenSans-Semibold.ttf"
    path = Path(spec.origin).parent / "fonts" / name if spec and spec.origin else Path(name)
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default()


def _rng(*keys: object) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def _contrast(c: tuple[int, int, int]) -> tuple[int, int, int]:
    lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    return (20, 20, 25) if lum > 150 else (250, 250, 245)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, max_w: int, max_h: int, bold: bool = True):
    size = max(8, max_h)
    while size > 8:
        f = _font(size, bold)
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
        if x1 - x0 <= max_w and y1 - y0 <= max_h:
            return f, (x1 - x0, y1 - y0, x0, y0)
        size = int(size * 0.85)
    f = _font(8, bold)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=f)
    return f, (x1 - x0, y1 - y0, x0, y0)


def product_label(key: str, text: str, aspect: float, palette: list[tuple[float, float, float]] | None = None,
                  art_seed: int = 0, side_strip: bool = False, height: int = 256) -> np.ndarray:
    """A product label: brand text on a coloured design, `aspect` = width / height.

    With `side_strip`, the rightmost quarter holds the side panel art (box cartons), see
    `geometry.LABEL_U`.
    """
    rng = _rng("label", key, art_seed)
    h = height
    w = int(np.clip(round(h * aspect), 64, MAX_SIDE))
    if palette:
        cols = [tuple(int(255 * c) for c in p) for p in palette]
        while len(cols) < 3:
            cols.append(_hsv(rng.random(), 0.5, 0.9))
    else:
        hue = rng.random()
        cols = [_hsv(hue, rng.uniform(0.55, 0.95), rng.uniform(0.55, 0.95)),
                _hsv(hue + rng.choice([0.08, 0.5, 0.33, -0.1]), rng.uniform(0.4, 0.9), rng.uniform(0.7, 1.0)),
                _hsv(hue + 0.5, rng.uniform(0.1, 0.3), rng.uniform(0.9, 1.0))]
    bg, accent, light = cols[0], cols[1], cols[2]
    front_w = int(round(w * 0.75)) if side_strip else w
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    style = int(rng.integers(0, 4))
    if style == 0:  # bands
        y = int(h * rng.uniform(0.55, 0.7))
        d.rectangle([0, y, front_w, y + int(h * 0.12)], fill=accent)
        d.rectangle([0, int(h * 0.08), front_w, int(h * 0.12)], fill=light)
    elif style == 1:  # big disc behind the brand
        r = int(min(front_w, h) * rng.uniform(0.35, 0.5))
        cx, cy = int(front_w * rng.uniform(0.35, 0.65)), int(h * 0.42)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=accent)
    elif style == 2:  # diagonal stripe
        s = int(h * rng.uniform(0.2, 0.35))
        d.polygon([(0, h - s * 2), (front_w, h // 3 - s), (front_w, h // 3 + s), (0, h)], fill=accent)
    else:  # wave-ish blocks
        for i in range(6):
            x = int(front_w * i / 6)
            y = int(h * (0.6 + 0.1 * np.sin(i + rng.uniform(0, 6))))
            d.rectangle([x, y, x + front_w // 6 + 1, h], fill=accent)
    # brand text on a light plate so it reads at small sizes
    text = (text or key)[:24]
    f, (tw, th, ox, oy) = _fit_text(d, text, int(front_w * 0.86), int(h * 0.22))
    tx, ty = (front_w - tw) // 2 - ox, int(h * 0.36) - th // 2 - oy
    pad = max(3, h // 40)
    d.rounded_rectangle([tx + ox - pad, ty + oy - pad, tx + ox + tw + pad, ty + oy + th + pad], radius=pad * 2, fill=light)
    d.text((tx, ty), text, font=f, fill=_contrast(light))
    sub = ["ORIGINAL", "CLASSIC", "LIGHT", "FAMILY PACK", "NEW!", "EXTRA", "BIO", "ZERO"][int(rng.integers(0, 8))]
    f2, (sw, sh, sox, soy) = _fit_text(d, sub, int(front_w * 0.6), int(h * 0.09), bold=False)
    d.text(((front_w - sw) // 2 - sox, int(h * 0.86) - sh // 2 - soy), sub, font=f2, fill=_contrast(accent if style != 1 else bg))
    if side_strip:
        d.rectangle([front_w, 0, w, h], fill=accent)
        for i in range(5):  # a nutrition table look-alike
            y = int(h * (0.15 + 0.1 * i))
            d.rectangle([front_w + 4, y, w - 4, y + max(2, h // 60)], fill=light)
        bx = front_w + 6
        for i in range(18):  # a barcode
            x = bx + i * max(1, (w - front_w - 12) // 18)
            if rng.random() < 0.6:
                d.rectangle([x, int(h * 0.72), x, int(h * 0.9)], fill=(15, 15, 15))
    return np.asarray(img, dtype=np.uint8)


def price_strip(key: str, width_m: float, px_per_m: int = 400, height: int = 24) -> np.ndarray:
    """The grey strip on a shelf's front edge with white price tags at intervals."""
    rng = _rng("price", key)
    w = int(np.clip(width_m * px_per_m, 64, 2048))
    img = Image.new("RGB", (w, height), (70, 72, 78))
    d = ImageDraw.Draw(img)
    x = int(rng.integers(4, 30))
    f = _font(max(8, height - 8))
    while x < w - 40:
        tag_w = int(rng.integers(34, 52))
        yellow = rng.random() < 0.2
        d.rectangle([x, 2, x + tag_w, height - 3], fill=(250, 220, 40) if yellow else (245, 245, 240))
        price = f"{rng.integers(0, 9)}.{rng.integers(0, 99):02d}"
        d.text((x + 3, 1), price, font=f, fill=(200, 20, 20) if yellow else (20, 20, 20))
        x += tag_w + int(rng.integers(40, 160))
    return np.asarray(img, dtype=np.uint8)


def load_image(path: Path) -> np.ndarray:
    """A user image (PNG/JPEG) as RGB uint8, shrunk to at most MAX_SIDE px on a side."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if max(im.size) > MAX_SIDE:
            s = MAX_SIDE / max(im.size)
            im = im.resize((max(1, int(im.width * s)), max(1, int(im.height * s))), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)
