"""`kminer train`: train a detector or classifier on COCO datasets, or verify a delivered model.

    kminer train DATASET... --out DIR [--arch centernet-s] [--epochs 10] [--batch 32] [--ddp N] [--json]
    kminer train DATASET... --verify MODEL_DIR [--tolerance 0.05] [--json]
    kminer train --list-archs

Training runs in this process (torch is imported only here). DIR gets model.safetensors,
model_card.json, curves.json/.png and checkpoint.safetensors; run the same command again
after a crash, kill or Ctrl-C and it resumes from the checkpoint, ending with the same
weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (e.g. 320x240)") from None
    if not (8 <= w <= 4096 and 8 <= h <= 4096):
        raise argparse.ArgumentTypeError("width and height must be 8..4096")
    return w, h


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a detector/classifier on COCO datasets, or verify a model",
                       description="Train a model on one or more COCO dataset folders (e.g. render shards), "
                                   "or with --verify re-evaluate a delivered model on held-out data.")
    p.add_argument("datasets", nargs="*", type=Path, metavar="DATASET", help="COCO folders (annotations.json + images)")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (weights, card, curves, checkpoint)")
    p.add_argument("--arch", default="centernet-s", help="architecture (see --list-archs)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=32, help="images per step and per process")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--input-size", type=_size, metavar="WxH", help="model input size (default per arch)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--ddp", type=int, default=1, metavar="N", help="DDP processes (one per GPU; gloo on CPU)")
    p.add_argument("--threads", type=int, metavar="N", help="torch CPU threads per process")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--half", action="store_true", help="store the delivered weights in fp16")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS", help="also checkpoint every N steps")
    p.add_argument("--verify", type=Path, metavar="MODEL", help="verify this model folder on the DATASETs instead of training")
    p.add_argument("--tolerance", type=float, default=0.05, help="verification tolerance on the card's metric")
    p.add_argument("--list-archs", action="store_true", help="list the architectures and exit")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _device(name: str) -> str:
    import torch  # deferred: torch takes ~2 s to load

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("no CUDA device is available; use --device cpu")
    return name


def run(args: argparse.Namespace) -> int:
    from jobs.train import TrainError

    try:
        if args.list_archs:
            return _list_archs(args)
        if not args.datasets:
            raise UserError("give at least one DATASET folder")
        if args.verify:
            return _verify(args)
        return _train(args)
    except TrainError as e:
        raise UserError(str(e)) from None


def _list_archs(args: argparse.Namespace) -> int:
    from jobs.train.models import ARCHS  # deferred: imports torch (~2 s)

    rows = [{"name": a.name, "task": a.task, "available": a.available(), "input_size": list(a.default_input),
             "description": a.description} for a in ARCHS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            flag = "" if r["available"] else "  (needs the torchvision extra)"
            print(f"{r['name']:26} {r['task']:9} {r['input_size'][0]}x{r['input_size'][1]}  {r['description']}{flag}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from jobs.train.verify import verify_model  # deferred: imports torch (~2 s)

    res = verify_model(args.verify, args.datasets, args.tolerance, _device(args.device), args.threads or 2)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        verdict = "PASS" if res["passed"] else "FAIL"
        print(f"{verdict}: {res['metric']} measured {res['measured']:.3f} on {res['images']} images, "
              f"card claims {res['claimed']:.3f} (tolerance {res['tolerance']})")
    return 0 if res["passed"] else 1


def _train(args: argparse.Namespace) -> int:
    from jobs.train.engines import run_training  # deferred: imports torch (~2 s)
    from jobs.train.trainer import CHECKPOINT_NAME, Hooks, TrainConfig  # deferred: imports torch (~2 s)

    if args.out is None:
        raise UserError("give --out DIR for the trained model")
    try:
        cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch=args.batch, lr=args.lr, input_size=args.input_size,
                          val_fraction=args.val_fraction, seed=args.seed, device=_device(args.device),
                          world_size=args.ddp, threads=args.threads, augment=not args.no_augment,
                          half_weights=args.half, checkpoint_every_steps=args.checkpoint_every)
    except ValidationError as e:
        err = e.errors()[0]
        raise UserError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
    stop = threading.Event()

    def _on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    quiet = args.json

    def log(msg: str, level: str = "info") -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = run_training(args.datasets, cfg, args.out, args.out / CHECKPOINT_NAME, args.out,
                               Hooks(log=log, should_stop=stop.is_set))
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if args.json:
        print(json.dumps(summary, indent=2))
    elif summary["stopped"]:
        print(f"stopped at epoch {summary['epoch'] + 1}; run the same command again to resume")
    else:
        m = summary.get("metrics", {})
        shown = ", ".join(f"{k} {v:.3f}" for k, v in m.items() if k in ("map50", "map", "accuracy"))
        print(f"trained {args.arch} in {summary['train_s']:.0f} s ({summary['images_per_s']:.1f} images/s): {shown}; "
              f"model in {args.out}")
    return 3 if summary["stopped"] else 0
