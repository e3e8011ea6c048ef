"""`kminer infer`: run a model (card + safetensors) on images.

    kminer infer MODEL IMAGE... [--json] [--out DIR] [--score-threshold 0.3] [--max-pixels N]

MODEL is a model folder (model_card.json + weights) or the card file. Any image PIL reads
works; EXIF rotation is honoured. --out DIR gets annotated PNGs and results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("infer", help="run a model on images (boxes, classes, scores)",
                       description="Run a detector or classifier on images; print the results, write annotated copies.")
    p.add_argument("model", type=Path, metavar="MODEL", help="model folder (model_card.json + model.safetensors)")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, metavar="DIR", help="write annotated images and results.json here")
    p.add_argument("--score-threshold", type=float, default=0.3, help="drop detections below this score (0-1)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="refuse images with more pixels than this")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.score_threshold <= 1:
        raise UserError("--score-threshold must be between 0 and 1")
    if args.max_pixels < 1:
        raise UserError("--max-pixels must be positive")
    import torch  # deferred: torch takes ~2 s to load

    from jobs.train import TrainError
    from jobs.train.infer import infer_paths, load_model  # deferred: imports torch (~2 s)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("no CUDA device is available; use --device cpu")
    try:
        lm = load_model(args.model, args.device)
        results = infer_paths(lm, args.images, args.out, args.score_threshold, args.max_pixels)
    except TrainError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps({"model": lm.card["arch"], "classes": lm.classes, "results": results}, indent=2))
        return 0
    for r in results:
        if "detections" in r:
            print(f"{r['image']} ({r['width']}x{r['height']}): {len(r['detections'])} detections")
            for d in r["detections"]:
                print(f"  {d['class']:20} {d['score']:.2f}  [{', '.join(f'{v:.0f}' for v in d['box'])}]")
        else:
            print(f"{r['image']}: " + ", ".join(f"{t['class']} {t['score']:.2f}" for t in r["top"]))
    if args.out:
        print(f"annotated images and results.json in {args.out}")
    return 0
