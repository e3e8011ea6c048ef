"""Make the demo models: render the demo shelf scene, train a shelf-product detector and a
product classifier, evaluate both on a held-out render with other lighting and camera
settings, and write them (fp16 safetensors + cards + curves + an annotated example) to
resources/models/. `make demo-models` runs this.

    python -m jobs.train.demo_models [--out resources/models] [--frames 1500] [--holdout 200]
                                     [--detector-minutes 25 | --detector-epochs N] [--classifier-epochs 3]
                                     [--negatives 300] [--photoreal [--photoreal-frames 40]]
                                     [--finetune MODEL_DIR] [--skip-classifier] [--work DIR] [--render-only]

The detector also sees `--negatives` frames without products (jobs.train.negatives), so it
stays quiet on photos of other things; `--photoreal` adds Cycles renders (positives and a
tenth of the negatives) for machines with a GPU (bpy, the photoreal extra).

Rendering runs in `--procs` parallel processes (one shard each; the trainer reads shards
directly). Everything is seeded, so a rerun renders the same frames; training time depends
on the machine. The cards get `holdout_metrics` (the held-out render) and `production`
(how long rendering and training took here).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENE = ROOT / "resources" / "scenes" / "retail_shelf.json"


def _scene(base: dict, *, width: int, height: int, count: int, seed: int, holdout: bool) -> dict:
    s = json.loads(json.dumps(base))
    s["outputs"] = {**s.get("outputs", {}), "width": width, "height": height, "count": count, "seed": seed}
    if holdout:  # other light and camera than training: dimmer/warmer light, wider views
        s["lights"] = {**s["lights"], "intensity": [1.5, 3.0], "color_temperature_k": [3200, 5200], "ambient": [0.25, 0.4]}
        s["camera"] = {**s["camera"], "distance": [1.6, 2.0], "yaw_deg": [-22, 22], "pitch_deg": [0, 14], "fov_deg": [46, 58]}
    return s


def _render_shard(scene: dict, out: str, start: int, count: int) -> None:
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    render_dataset(parse_scene(scene), out, start=start, count=count)


def render(scene: dict, out: Path, procs: int) -> list[Path]:
    """Render `scene` in `procs` shards (parallel processes); returns the shard folders."""
    n = scene["outputs"]["count"]
    per = -(-n // procs)
    ctx = mp.get_context("spawn")
    jobs, shards = [], []
    for k in range(procs):
        start, count = k * per, min(per, n - k * per)
        if count <= 0:
            break
        d = out / f"shard-{k}"
        shards.append(d)
        if (d / "annotations.json").is_file() and (d / "dataset.json").is_file():
            continue  # rendered by an earlier run (frames depend only on spec, seed, index)
        if d.exists():
            shutil.rmtree(d)
        p = ctx.Process(target=_render_shard, args=(scene, str(d), start, count))
        p.start()
        jobs.append(p)
    for p in jobs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"rendering failed (exit code {p.exitcode})")
    return shards


def _render_seconds(shards: list[Path]) -> float:
    """Wall time the parallel shards took (the slowest shard), read from their dataset cards."""
    return max(json.loads((d / "dataset.json").read_text())["time"]["seconds"] for d in shards)


def _probe(run, cfg) -> float:
    """Training images/s of this model on this machine right now (3 timed steps after a warm-up)."""
    import torch

    from jobs.train.data import augment_detection, step_generator
    from jobs.train.models import build_model

    model = build_model(cfg.arch, len(run.data.classes), cfg.input_size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    c = run.train_cache
    t = []
    for step in range(4):
        idx = torch.arange(step * cfg.batch, (step + 1) * cfg.batch) % len(c)
        t0 = time.perf_counter()
        x, b, lab = augment_detection(c.images[idx], c.boxes[idx], c.labels[idx], step_generator(0, 0, step, 0))
        loss, _ = model(x, b, lab)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t.append(time.perf_counter() - t0)
    return cfg.batch / (sum(t[1:]) / 3)


def _finish(model_dir: Path, dest: Path, holdout: dict, production: dict, example: Path | None) -> dict:
    from common.fsutil import atomic_write_json

    card = json.loads((model_dir / "model_card.json").read_text())
    card["holdout_metrics"] = holdout
    key = card.get("metric")
    card.setdefault("evaluation_sets", []).append(
        {"name": "held-out render", "images": holdout.get("frames"), "metric": key, "value": holdout.get(key),
         "what": "renders of the same scene with an unseen seed, other light and camera settings"})
    card["production"] = production
    old = dest / "model_card.json"
    if old.is_file():  # the listing's seller stays the seller of a retrained model
        seller = json.loads(old.read_text()).get("seller")
        if seller:
            card = {"format": card["format"], "seller": seller, **{k: v for k, v in card.items() if k != "format"}}
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "curves.json", "curves.png"):
        shutil.copy(model_dir / name, dest / name)
    if example is not None:
        shutil.copy(example, dest / "example.png")
    atomic_write_json(dest / "model_card.json", card)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="render the demo shelf and train the demo models")
    ap.add_argument("--out", type=Path, default=ROOT / "resources" / "models")
    ap.add_argument("--work", type=Path, help="keep renders and checkpoints here (default: a temp folder)")
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--holdout", type=int, default=200)
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--procs", type=int, default=2, help="parallel render processes")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--detector-epochs", type=int, default=0, help="0: as many as fit in --detector-minutes")
    ap.add_argument("--detector-minutes", type=float, default=25.0, help="training time budget when epochs is 0")
    ap.add_argument("--classifier-epochs", type=int, default=3)
    ap.add_argument("--render-only", action="store_true", help="render the datasets into --work and stop")
    ap.add_argument("--negatives", type=int, default=300,
                    help="detector negatives: frames without products (jobs.train.negatives; default 300)")
    ap.add_argument("--photoreal", action="store_true",
                    help="put Cycles renders in the detector's mix (the photoreal extra; slow on a CPU, meant for a GPU)")
    ap.add_argument("--photoreal-frames", type=int, default=40, help="with --photoreal: Cycles frames with products")
    ap.add_argument("--photoreal-samples", type=int, default=16, help="with --photoreal: Cycles samples per pixel")
    ap.add_argument("--finetune", type=Path, metavar="MODEL_DIR",
                    help="start the detector from this model's weights (e.g. resources/models/shelf-detector)")
    ap.add_argument("--skip-classifier", action="store_true", help="train the detector only")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.split("x"))
    base = json.loads(SCENE.read_text())
    tmp = None
    if a.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="kminer-demo-")
        a.work = Path(tmp.name)
    a.work.mkdir(parents=True, exist_ok=True)

    import torch

    from jobs.train.infer import infer_paths, load_model
    from jobs.train.trainer import CHECKPOINT_NAME, Hooks, TrainConfig, prepare, train
    from jobs.train.verify import verify_model

    torch.set_num_threads(a.threads)
    log = Hooks(log=lambda m, level="info": print(m, flush=True))
    t0 = time.perf_counter()
    train_shards = render(_scene(base, width=w, height=h, count=a.frames, seed=0, holdout=False), a.work / "train", a.procs)
    hold_shards = render(_scene(base, width=w, height=h, count=a.holdout, seed=1000, holdout=True), a.work / "holdout", a.procs)
    extra_shards: list[Path] = []
    if a.photoreal:
        photo = _scene(base, width=w, height=h, count=a.photoreal_frames, seed=2000, holdout=False)
        photo["engine"] = "photoreal"
        photo["photoreal"] = {"samples": a.photoreal_samples, "denoise": True}
        extra_shards += render(photo, a.work / "photoreal", 1)
    if a.negatives:
        from jobs.train.negatives import render_negatives

        extra_shards += render_negatives(base, a.work / "negatives", a.negatives, width=w, height=h,
                                         photoreal=max(1, a.negatives // 10) if a.photoreal else 0,
                                         samples=a.photoreal_samples)
    render_s = (_render_seconds(train_shards) + _render_seconds(hold_shards)  # from the dataset cards (also when reused)
                + sum(_render_seconds([d]) for d in extra_shards))
    print(f"rendered {a.frames} + {a.holdout} frames in {render_s:.0f} s", flush=True)
    if a.render_only:
        return 0

    results = {}
    todo = [("shelf-detector", "centernet-s", a.detector_epochs, 16, 1e-3 if a.finetune else 3e-3)]
    if not a.skip_classifier:
        todo.append(("product-classifier", "classifier-s", a.classifier_epochs, 64, 3e-3))
    for name, arch, epochs, batch, lr in todo:
        detector = arch.startswith("centernet")
        shards = train_shards + extra_shards if detector else train_shards
        t1 = time.perf_counter()
        mdir = a.work / name
        cfg = TrainConfig(arch=arch, epochs=max(1, epochs), batch=batch, lr=lr, input_size=(w, h) if arch.startswith("centernet") else None,
                          threads=a.threads, half_weights=True, val_fraction=0.1, seed=0, eval_every=4)
        run = prepare(shards, cfg, log)
        if epochs == 0:
            ips = _probe(run, cfg)
            # 0.8: evaluation, checkpoints and a busier machine later on eat into the budget
            epochs = max(1, min(200, int(0.8 * a.detector_minutes * 60 * ips / len(run.train_cache))))
            print(f"{name}: {ips:.1f} images/s here now -> {epochs} epochs in {a.detector_minutes} min", flush=True)
            cfg = cfg.model_copy(update={"epochs": epochs})
        deadline = time.monotonic() + (a.detector_minutes * 60 if arch.startswith("centernet") else 1e9)
        hooks = Hooks(log=log.log, finish_early=lambda: time.monotonic() > deadline)
        init = a.finetune / "model.safetensors" if a.finetune and detector else None
        train(shards, cfg, mdir, mdir / CHECKPOINT_NAME, hooks, run=run, init_weights=init)
        train_s = time.perf_counter() - t1
        v = verify_model(mdir, hold_shards, tolerance=1.0, threads=a.threads)
        example = None
        if arch.startswith("centernet"):
            lm = load_model(mdir)
            img = sorted((hold_shards[0] / "images").iterdir())[0]
            infer_paths(lm, [img], a.work / "example", score_threshold=0.35)
            example = a.work / "example" / f"{img.stem}.png"
        card = _finish(mdir, a.out / name, {**v["metrics"], "frames": v["images"], "note": "held-out render, other light and camera"},
                       {"render_s": round(render_s, 1), "render_processes": a.procs, "train_s": round(train_s, 1),
                        "train_frames": a.frames, "holdout_frames": a.holdout, "threads": a.threads,
                        **({"negative_frames": a.negatives + (max(1, a.negatives // 10) if a.photoreal else 0),
                            "photoreal_frames": a.photoreal_frames if a.photoreal else 0,
                            "finetuned_from": a.finetune.name if a.finetune else None} if detector else {}),
                        "machine": "2 shared CPU cores, no GPU; other jobs running; nice 10"}, example)
        results[name] = {"val": card["metrics"].get(card["metric"]), "holdout": v["metrics"], "train_s": round(train_s, 1),
                         "bytes": (a.out / name / "model.safetensors").stat().st_size}
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps({"render_s": round(render_s, 1), "total_s": round(time.perf_counter() - t0, 1), **results}, indent=2))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
