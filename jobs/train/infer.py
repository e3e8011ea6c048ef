"""Inference with a delivered model: card + safetensors in, JSON detections and annotated images out.

Every image is checked (readable by PIL, under the pixel limit, checked on the header before
any decoding) before the first result is written, so a bad input refuses the whole request
with one clear line and leaves nothing half-written. EXIF rotation is honoured; boxes are in
the pixels of the upright image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from common.fsutil import atomic_write_json
from jobs.train import TrainError
from jobs.train.boxes import unletterbox
from jobs.train.card import load_card
from jobs.train.checkpoint import load_weights
from jobs.train.data import letterbox, load_rgb
from jobs.train.models import build_model, get_arch

DEFAULT_MAX_PIXELS = 40_000_000
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
            (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40)]


@dataclass
class LoadedModel:
    card: dict
    model: torch.nn.Module
    device: str

    @property
    def task(self) -> str:
        return self.card["task"]

    @property
    def classes(self) -> list[str]:
        return self.card["classes"]

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.card["input_size"])


def load_model(path: Path, device: str = "cpu", weights: Path | None = None) -> LoadedModel:
    """Load a model folder (card + weights), or a card file with `weights` given apart (a job
    gets them as two file inputs); TrainError when the card is invalid, the weights are
    missing, corrupt, or not the ones the card names (sha256), or do not fit the arch."""
    card, weights_beside = load_card(path)
    weights = Path(weights) if weights is not None else weights_beside
    spec = get_arch(card["arch"])
    if spec.task != card["task"]:
        raise TrainError(f"model card says task {card['task']!r} but {card['arch']} is a {spec.task} model")
    if not weights.is_file():
        raise TrainError(f"weights file {weights.name} named by the card is missing")
    want = card["weights"].get("sha256")
    if want is not None:
        got = hashlib.sha256(weights.read_bytes()).hexdigest()
        if got != want:
            # never quote the file's own hash: a stranger's card may point at a file of ours
            raise TrainError(f"weights file {weights.name} is not the one the card describes (its sha256 differs)")
    model = build_model(card["arch"], len(card["classes"]), tuple(card["input_size"]))
    load_weights(weights, model)
    model.to(device).eval()
    return LoadedModel(card, model, device)


def check_image(path: Path, max_pixels: int) -> None:
    """Refuse (TrainError) a missing file, a non-image, or an image over `max_pixels`."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"{path} is not a file")
    try:
        with Image.open(path) as im:
            w, h = im.size
            # a rotated JPEG keeps its pixel count; the limit applies before decoding
    except Image.DecompressionBombError:
        raise TrainError(f"{path.name} has far more pixels than the limit of {max_pixels}") from None
    except (UnidentifiedImageError, OSError) as e:
        raise TrainError(f"{path.name} is not an image PIL can read ({type(e).__name__})") from None
    if w * h > max_pixels:
        raise TrainError(f"{path.name} is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} pixels")


def predict_image(lm: LoadedModel, im: Image.Image, score_threshold: float = 0.3, top_k: int = 5) -> dict:
    """Detections (or class probabilities) for one upright RGB PIL image."""
    w, h = lm.input_size
    arr, (sx, sy, px, py) = letterbox(im, w, h)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].to(lm.device).float()
    with torch.no_grad():
        if lm.task == "detect":
            d = lm.model.predict(x, score_threshold=score_threshold)[0]
            boxes = unletterbox(d.boxes.float().cpu(), sx, sy, px, py, im.width, im.height)
            dets = [{"class": lm.classes[int(c)], "class_id": int(c), "score": round(float(s), 4),
                     "box": [round(float(v), 1) for v in b]}
                    for b, s, c in zip(boxes, d.scores.cpu(), d.labels.cpu())]
            return {"detections": dets}
        probs = lm.model.predict(x)[0].cpu()
        k = min(top_k, probs.numel())
        sc, ix = probs.topk(k)
        return {"top": [{"class": lm.classes[int(i)], "class_id": int(i), "score": round(float(s), 4)} for s, i in zip(sc, ix)]}


def annotate(im: Image.Image, result: dict) -> Image.Image:
    """A copy of `im` with every detection's box drawn, and a "class score" tag on as many as
    fit without covering another tag (highest scores first: a crowded shelf stays readable;
    results.json and the GUI's table list every detection)."""
    out = im.copy()
    d = ImageDraw.Draw(out)
    lw = max(2, round(min(im.size) / 200))
    dets = sorted(result.get("detections", []), key=lambda t: -t["score"])
    for det in dets:
        d.rectangle(det["box"], outline=_PALETTE[det["class_id"] % len(_PALETTE)], width=lw)
    placed: list[tuple[float, float, float, float]] = []
    for det in dets:
        x1, y1, x2, y2 = det["box"]
        label = f"{det['class'].replace('_', ' ')} {det['score']:.2f}"
        tw = d.textlength(label) + 4
        tx = min(max(0.0, x1), max(0.0, im.width - tw))
        for ty in (y1 - 12, y1, y2):   # above the box, inside its top, below it
            tag = (tx, ty, tx + tw, ty + 12)
            if ty >= 0 and ty + 12 <= im.height and not any(_overlap(tag, o) for o in placed):
                placed.append(tag)
                d.rectangle(tag, fill=_PALETTE[det["class_id"] % len(_PALETTE)])
                d.text((tx + 2, ty), label, fill=(0, 0, 0))
                break
    if "top" in result and result["top"]:
        t = result["top"][0]
        d.rectangle([0, 0, d.textlength(f"{t['class']} {t['score']:.2f}") + 6, 14], fill=(0, 0, 0))
        d.text((3, 1), f"{t['class']} {t['score']:.2f}", fill=(255, 255, 255))
    return out


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def infer_paths(lm: LoadedModel, paths: list[Path], out_dir: Path | None = None, score_threshold: float = 0.3,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> list[dict]:
    """Run the model on every image; write annotated copies and results.json to `out_dir` if given."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise TrainError("no images given")
    for p in paths:
        check_image(p, max_pixels)
    results, names = [], set()
    for p in paths:
        im = load_rgb(p, max_pixels)
        res = {"image": p.name, "width": im.width, "height": im.height, **predict_image(lm, im, score_threshold)}
        if out_dir is not None:
            stem, n = p.stem, 1
            while f"{stem}.png" in names:
                n += 1
                stem = f"{p.stem}-{n}"
            names.add(f"{stem}.png")
            out_dir.mkdir(parents=True, exist_ok=True)
            annotate(im, res).save(out_dir / f"{stem}.png")
            res["annotated"] = f"{stem}.png"
        results.append(res)
    if out_dir is not None:
        atomic_write_json(out_dir / "results.json", {"model": lm.card["arch"], "classes": lm.classes, "results": results})
    return results

