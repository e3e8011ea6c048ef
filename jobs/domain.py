"""Does a photo look like the images a model was trained on? Image statistics, no model.

A model card's `domain_stats` (written at training time from its training images) holds the
mean and spread of a few global image statistics of those images, and a threshold. A photo's
distance from that domain is the root mean square of its statistics' robust z-scores
(|value - median| / (1.4826 x MAD), each capped at Z_CAP so one odd statistic cannot dominate);
the photo is out of domain when that distance is above the card's threshold: the 99th
percentile of the training images' own distances, times THRESHOLD_MARGIN, and at least
MIN_THRESHOLD. This is a warning, not a verdict: a photo of a real shelf may well be
"out of domain" for a model trained on renders only, and that is what the user should know.

Statistics (on a copy at most 160 px wide, RGB 0-1): luma mean and spread; saturation mean;
colourfulness (Hasler and Suesstrunk); edge density (share of pixels with a luma gradient
above 0.08); fine texture (mean |Laplacian|); share of near-flat 8x8 blocks; hue spread.
Pure numpy and PIL, any thread; an image's statistics take a few milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from PIL import Image

FEATURES = ("luma_mean", "luma_std", "saturation", "colourfulness", "edge_density", "texture", "flat_blocks",
            "hue_spread")
DOMAIN_FORMAT = "kminer-domain-stats/1"
Z_CAP = 8.0
THRESHOLD_MARGIN = 1.25
MIN_THRESHOLD = 2.0
_WIDTH = 160


def image_features(img: Image.Image | np.ndarray) -> np.ndarray:
    """The statistics (FEATURES order) of one image (PIL image or HxWx3 uint8 array)."""
    im = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
    im = im.convert("RGB")
    if im.width > _WIDTH:
        im = im.resize((_WIDTH, max(8, round(im.height * _WIDTH / im.width))), Image.Resampling.BILINEAR)
    a = np.asarray(im, np.float64) / 255.0
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    mx, mn = a.max(axis=2), a.min(axis=2)
    sat = np.where(mx > 1e-6, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    gx, gy = np.diff(y, axis=1)[:-1, :], np.diff(y, axis=0)[:, :-1]
    grad = np.hypot(gx, gy)
    lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    h8, w8 = y.shape[0] // 8 * 8, y.shape[1] // 8 * 8
    blocks = y[:h8, :w8].reshape(h8 // 8, 8, w8 // 8, 8).std(axis=(1, 3))
    hue = np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)
    chroma = sat > 0.15
    if chroma.sum() > 10:
        c, s = np.cos(hue[chroma]).mean(), np.sin(hue[chroma]).mean()
        hue_spread = float(1.0 - np.hypot(c, s))
    else:
        hue_spread = 0.0
    return np.array([y.mean(), y.std(), sat.mean(), colourful, float((grad > 0.08).mean()), float(lap.mean()),
                     float((blocks < 0.01).mean()) if blocks.size else 0.0, hue_spread])


def _distances(feats: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = np.minimum(np.abs((feats - center) / scale), Z_CAP)
    return np.sqrt((z * z).mean(axis=-1))


def domain_stats(images: Iterable[Image.Image | np.ndarray | Path], *, description: str = "") -> dict[str, Any]:
    """`domain_stats` for a model card from its training images (at least 8)."""
    feats = []
    for im in images:
        if isinstance(im, (str, Path)):
            with Image.open(im) as f:
                feats.append(image_features(f))
        else:
            feats.append(image_features(im))
    if len(feats) < 8:
        raise ValueError(f"domain statistics need at least 8 images, got {len(feats)}")
    f = np.stack(feats)
    center = np.median(f, axis=0)
    scale = np.maximum(1.4826 * np.median(np.abs(f - center), axis=0), 1e-3 + 0.05 * np.abs(center))
    d = _distances(f, center, scale)
    threshold = max(MIN_THRESHOLD, float(np.quantile(d, 0.99)) * THRESHOLD_MARGIN)
    return {"format": DOMAIN_FORMAT, "features": list(FEATURES), "center": [round(float(v), 6) for v in center],
            "scale": [round(float(v), 6) for v in scale], "threshold": round(threshold, 4), "images": len(feats),
            "description": description}


def check_stats(stats: Any) -> dict | None:
    """`stats` if it is a usable domain_stats dict of this format, else None (a stranger's card)."""
    if not isinstance(stats, Mapping) or stats.get("format") != DOMAIN_FORMAT or list(stats.get("features", [])) != list(FEATURES):
        return None
    try:
        c = np.asarray(stats["center"], np.float64)
        s = np.asarray(stats["scale"], np.float64)
        t = float(stats["threshold"])
    except (KeyError, TypeError, ValueError):
        return None
    if c.shape != (len(FEATURES),) or s.shape != c.shape or not (np.isfinite(c).all() and np.isfinite(s).all()
                                                                   and (s > 0).all() and np.isfinite(t) and t > 0):
        return None
    return dict(stats)


def domain_distance(stats: Mapping[str, Any], img: Image.Image | np.ndarray) -> tuple[float, bool, list[str]]:
    """(distance, in_domain, the statistics furthest off) of one photo against a card's stats."""
    c = np.asarray(stats["center"], np.float64)
    s = np.asarray(stats["scale"], np.float64)
    f = image_features(img)
    z = np.minimum(np.abs((f - c) / s), Z_CAP)
    d = float(np.sqrt((z * z).mean()))
    worst = [FEATURES[i] for i in np.argsort(-z)[:2] if z[i] > 2.0]
    return d, d <= float(stats["threshold"]), worst
