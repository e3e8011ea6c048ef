"""Model cards (JSON beside the safetensors weights) and the training-curve plot (PNG, drawn with PIL).

A card says what a model is and what it claims: arch, classes, input size, metrics on its
validation split, the datasets it saw (hashes), training time, device and software versions.
`load_card` validates a card from an untrusted source before anything is built from it.
"""

from __future__ import annotations

import json
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


def load_card(model_path: Path) -> tuple[dict, Path]:
    """Read a card from a model folder (or the card file itself); returns (card, weights path)."""
    model_path = Path(model_path)
    card_path = model_path / CARD_NAME if model_path.is_dir() else model_path
    if not card_path.is_file():
        raise TrainError(f"no model card at {card_path}")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise TrainError(f"model card {card_path.name} is not valid JSON ({e})") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise TrainError(f"{card_path.name} is not a Knowledge Miner model card (format {CARD_FORMAT})")
    for key, typ in (("arch", str), ("task", str), ("classes", list), ("input_size", list), ("weights", dict)):
        if not isinstance(card.get(key), typ):
            raise TrainError(f"model card {card_path.name} lacks a valid {key!r}")
    isz = card["input_size"]
    if len(isz) != 2 or not all(isinstance(v, int) and 8 <= v <= 4096 for v in isz):
        raise TrainError(f"model card {card_path.name} has an invalid input_size {isz!r}")
    if not card["classes"] or not all(isinstance(c, str) for c in card["classes"]):
        raise TrainError(f"model card {card_path.name} has invalid classes")
    wname = card["weights"].get("file", WEIGHTS_NAME)
    if not isinstance(wname, str) or "/" in wname or "\\" in wname or wname.startswith("."):
        raise TrainError(f"model card {card_path.name} names an invalid weights file {wname!r}")
    return card, card_path.parent / wname


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
