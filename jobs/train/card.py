"""Model cards (JSON beside the safetensors weights) and the training-curve plot (PNG, drawn with PIL).

A card says what a model is and what it claims: arch, classes, input size, metrics on its
validation split, the datasets it saw (hashes), training time, device and software versions.
`load_card` validates a card from an untrusted source before anything is built from it.
"""

from __future__ import annotations

import platform
from pathlib import Path

from PIL import Image, ImageDraw

from jobs.train import TrainError

CARD_FORMAT = "kminer-model-card/1"
CARD_NAME = "model_card.json"
WEIGHTS_NAME = "model.safetensors"


def software_versions() -> dict:
    import numpy
    import PIL
    import safetensors
    import torch

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
           "pillow": PIL.__version__, "safetensors": safetensors.__version__}
    try:
        from importlib.metadata import version

        out["pycocotools"] = version("pycocotools")
        out["knowledge-miner"] = version("knowledge-miner")
    except Exception:  # not installed as a distribution (e.g. a frozen bundle)
        pass
    return out


DOMAIN_SAMPLE = 200


def training_domain(shards: list[dict]) -> tuple[str, dict | None]:
    """(one line naming what the training images were, jobs.domain statistics of up to
    DOMAIN_SAMPLE of them) from the dataset folders `shards` (load_coco's shard dicts).
    Negative frames (jobs.train.negatives: scenes named `...-negatives-K`) are named as such
    and left out of the statistics, which describe the images with objects."""
    import json
    import re

    from jobs.domain import domain_stats

    scenes: dict[str, set[str]] = {}
    images: list[Path] = []
    negatives = 0
    for sh in shards:
        d = Path(sh["path"])
        name, engine = None, None
        try:
            scene = json.loads((d / "scene.json").read_text())
            name, engine = str(scene.get("name"))[:80], str(scene.get("engine", "fast"))
        except (OSError, ValueError, AttributeError):
            pass
        if name and re.search(r"-negatives-\d+$", name):
            negatives += int(sh.get("images") or 0)
            continue
        key = f"scene '{name}'" if name else f"dataset {d.name}"
        scenes.setdefault(key, set()).add("photoreal (Cycles)" if engine == "photoreal" else "fast (GL)" if engine else "unknown")
        images += sorted((d / "images").glob("*.*")) if (d / "images").is_dir() else []
    parts = [f"{k} ({' and '.join(sorted(v))} engine)" for k, v in scenes.items()]
    neg = (f", with {negatives} negative frames (empty shelves, bare rooms, clutter, procedural textures)"
           if negatives else "")
    line = f"synthetic renders of {', '.join(parts)} only{neg}; not measured on photos"
    stats = None
    if len(images) >= 8:
        step = max(1, len(images) // DOMAIN_SAMPLE)
        try:
            stats = domain_stats(images[::step][:DOMAIN_SAMPLE], description=line)
        except (OSError, ValueError):
            stats = None
    return line, stats


def load_card(model_path: Path) -> tuple[dict, Path]:
    """Read a card from a model folder (or the card file itself); returns (card, weights path).
    The card may be a stranger's (a market listing): read capped and decoded with limits
    (common.safejson), then `check_card`; every problem is one TrainError line."""
    from common.safejson import CARD_LIMITS, SafeJsonError, load_file

    model_path = Path(model_path)
    card_path = model_path / CARD_NAME if model_path.is_dir() else model_path
    if not card_path.is_file():
        raise TrainError(f"no model card at {card_path}")
    try:
        card = load_file(card_path, CARD_LIMITS, what="model card", follow_symlinks=True)
    except SafeJsonError as e:
        raise TrainError(f"model card {card_path.name} is not valid JSON ({e})") from None
    card = check_card(card, card_path.name)
    return card, card_path.parent / card["weights"].get("file", WEIGHTS_NAME)


MAX_CLASSES = 1000


def check_card(card: object, name: str = CARD_NAME) -> dict:
    """`card` if every field the app and the engines read has the right type and range."""
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise TrainError(f"{name} is not a Knowledge Miner model card (format {CARD_FORMAT})")
    for key, typ in (("arch", str), ("task", str), ("classes", list), ("input_size", list), ("weights", dict)):
        if not isinstance(card.get(key), typ):
            raise TrainError(f"model card {name} lacks a valid {key!r}")
    if len(card["arch"]) > 64 or card["task"] not in ("detect", "classify"):
        raise TrainError(f"model card {name} has an invalid arch or task")
    isz = card["input_size"]
    if len(isz) != 2 or not all(isinstance(v, int) and 8 <= v <= 4096 for v in isz):
        raise TrainError(f"model card {name} has an invalid input_size {isz!r}")
    classes = card["classes"]
    if not 0 < len(classes) <= MAX_CLASSES or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in classes):
        raise TrainError(f"model card {name} has invalid classes (1 to {MAX_CLASSES} names of up to 64 characters)")
    wname = card["weights"].get("file", WEIGHTS_NAME)
    if not isinstance(wname, str) or "/" in wname or "\\" in wname or wname.startswith(".") or len(wname) > 128:
        raise TrainError(f"model card {name} names an invalid weights file {str(wname)[:40]!r}")
    for key in ("metrics", "holdout_metrics"):
        if not isinstance(card.get(key, {}), dict):
            raise TrainError(f"model card {name}: {key} is not a table")
    if not isinstance(card.get("name", ""), str):
        raise TrainError(f"model card {name}: name is not text")
    return card


def plot_curves(curves: list[dict], path: Path, title: str = "") -> None:
    """Two panels, loss and validation metric per epoch, as a PNG (no matplotlib needed)."""
    w, h, m = 720, 300, 46
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    d.text((m, 6), title, fill="black")
    panels = [("train loss", [c.get("train_loss") for c in curves], (200, 60, 40)),
              ("val " + ("mAP@0.5" if any("map50" in c for c in curves) else "accuracy"),
               [c.get("map50", c.get("accuracy")) for c in curves], (40, 90, 200))]
    pw = (w - 3 * m) // 2
    for k, (name, ys, colour) in enumerate(panels):
        x0, y0, x1, y1 = m + k * (pw + m), 30, m + k * (pw + m) + pw, h - 30
        d.rectangle([x0, y0, x1, y1], outline=(160, 160, 160))
        d.text((x0 + 4, y0 + 4), name, fill=colour)
        pts = [(i, y) for i, y in enumerate(ys) if y is not None]
        if not pts:
            continue
        lo, hi = (0.0, 1.0) if k == 1 else (min(y for _, y in pts), max(y for _, y in pts))
        if hi - lo < 1e-9:
            hi = lo + 1
        n = max(1, len(ys) - 1)
        xy = [(x0 + (x1 - x0) * i / n, y1 - (y1 - y0) * (y - lo) / (hi - lo)) for i, y in pts]
        if len(xy) > 1:
            d.line(xy, fill=colour, width=2)
        for x, y in xy:
            d.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        d.text((x0 - 40, y0), f"{hi:.3g}", fill="black")
        d.text((x0 - 40, y1 - 10), f"{lo:.3g}", fill="black")
        d.text((x0, y1 + 6), "epoch 1", fill="black")
        d.text((x1 - 50, y1 + 6), f"epoch {len(ys)}", fill="black")
    img.save(path)
