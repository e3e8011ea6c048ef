"""Benchmark: the train engine's images/s against a bare torch loop, data loading, and inference latency.

    .venv/bin/python bench/bench_train.py [--dataset DIR] [--arch centernet-s] [--steps 4] [--reps 6] [--threads 2] [--json]

- engine vs bare loop: the same model, the same cached images and batch size, in the same
  run, alternated (bare, engine, bare, engine) so a busy machine affects both alike. The
  engine's figure is its whole step loop (batch gather, augmentation, target building,
  progress hooks, lr schedule); the bare loop is forward/backward/AdamW over the same tensors
  without augmentation. Rates come from the median step time; the ratio is the median of
  the ratios of back-to-back pairs (robust to other load drifting on a shared machine);
  goal >= 0.95.
- data loading: decoding one epoch of PNGs from disk (what a DataLoader without a cache pays
  every epoch) against gathering the same batches from the uint8 RAM cache.
- inference: latency per 640x480 image on the CPU (decode of a PNG excluded; letterbox to
  the model input + network + decoding of boxes), median of 20, and the network alone at
  640x480 input.
Without --dataset it draws a shapes dataset at 320x240 (jobs.train.synthetic).

Measured 2026-11-22, 2 CPU cores (quiet moment), 750 shelf renders at 320x240, centernet-s,
batch 32, 2 threads: bare loop 18.9 images/s, engine 19.2 images/s, ratio 1.025 (median of
6 pairs); PNG decode 822 images/s on one thread vs 8,763 images/s gathered from the cache;
inference 14.3 ms per 640x480 image (letterboxed to 320x240), 34.9 ms at 640x480 input.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from jobs.train.data import build_det_cache, load_coco, load_rgb  # noqa: E402
from jobs.train.models import build_model, count_params, get_arch  # noqa: E402
from jobs.train.trainer import Hooks, TrainConfig, prepare, train  # noqa: E402


def _median_rate(stamps: list[float], batch: int) -> float:
    """images/s from the median step time (step ends stamped; the first step, warm-up, is not timed)."""
    return batch / statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def bare_loop(run, arch: str, batch: int, steps: int, size) -> float:
    """images/s of a plain forward/backward/step loop over the cached tensors (median step)."""
    torch.manual_seed(0)
    model = build_model(arch, len(run.data.classes), size)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cache = run.train_cache
    perm = torch.randperm(len(cache))
    stamps = []
    for s in range(steps):
        idx = perm[(s * batch) % (len(cache) - batch):][:batch]
        x = cache.images[idx].float()
        loss, _ = model(x, cache.boxes[idx], cache.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        stamps.append(time.perf_counter())
    return _median_rate(stamps, batch)


def engine_loop(run, ds: list[Path], arch: str, batch: int, steps: int, threads: int, tmp: Path) -> float:
    """images/s of the engine's own step loop (one epoch of `steps` steps, no evaluation; median
    step, stamped by the engine's progress hook, which it calls after every step)."""
    n = steps * batch
    run.train_cache.images = run.train_cache.images[:n]
    cfg = TrainConfig(arch=arch, epochs=1, batch=batch, threads=threads, val_fraction=0.1, eval_every=10**6)
    ck = tmp / f"ck-{time.time_ns()}.safetensors"
    saved_val, run.val_cache = run.val_cache, None  # evaluation is not part of the step loop
    try:
        stamps: list[float] = []
        train(ds, cfg, tmp / "out", ck, Hooks(progress=lambda f, m=None: stamps.append(time.perf_counter())), run=run)
    finally:
        run.val_cache = saved_val
    return _median_rate(stamps, batch)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, action="append", help="COCO folder(s); default: drawn shapes")
    ap.add_argument("--arch", default="centernet-s")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4, help="steps per timed run (the first is a warm-up)")
    ap.add_argument("--reps", type=int, default=6, help="bare/engine pairs, run back to back")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res: dict = {"arch": a.arch, "batch": a.batch, "threads": a.threads, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        ds = a.dataset
        if not ds:
            from jobs.train.synthetic import make_shapes_dataset

            ds = [make_shapes_dataset(tmp / "shapes", n_images=a.batch * a.steps + 40, size=(320, 240), seed=0, max_objects=6)]
        size = get_arch(a.arch).default_input
        cfg = TrainConfig(arch=a.arch, batch=a.batch, threads=a.threads)
        run = prepare(ds, cfg, Hooks())
        if len(run.train_cache) < a.batch * a.steps:
            raise SystemExit(f"need at least {a.batch * a.steps} training images, have {len(run.train_cache)}")
        full = run.train_cache.images
        res["params"] = count_params(build_model(a.arch, len(run.data.classes), size))
        bare, eng = [], []
        for _ in range(a.reps):
            bare.append(bare_loop(run, a.arch, a.batch, a.steps, size))
            run.train_cache.images = full
            eng.append(engine_loop(run, ds, a.arch, a.batch, a.steps, a.threads, tmp))
            run.train_cache.images = full
        res["bare_images_per_s"] = [round(v, 2) for v in bare]
        res["engine_images_per_s"] = [round(v, 2) for v in eng]
        res["bare_median"] = round(statistics.median(bare), 2)
        res["engine_median"] = round(statistics.median(eng), 2)
        # each pair ran back to back, so their ratio is fair even when the machine's load drifts
        res["engine_over_bare"] = round(statistics.median(e / b for e, b in zip(eng, bare)), 3)

        # data loading: PNG decode per epoch vs the RAM cache
        data = load_coco(ds)
        samples = data.samples[: a.batch * a.steps]
        t0 = time.perf_counter()
        for s in samples:
            load_rgb(s.path)
        res["png_decode_images_per_s_1thread"] = round(len(samples) / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        build_det_cache(samples, size, threads=a.threads)
        res["cache_build_images_per_s"] = round(len(samples) / (time.perf_counter() - t0), 1)
        t0 = time.perf_counter()
        perm = torch.randperm(len(full))
        for s in range(0, len(full) - a.batch, a.batch):
            full[perm[s:s + a.batch]].float()
        res["cache_gather_images_per_s"] = round(len(full) / (time.perf_counter() - t0), 1)

        # inference latency at 640x480
        from jobs.train.infer import LoadedModel, predict_image

        model = build_model(a.arch, len(run.data.classes), size).eval()
        lm = LoadedModel({"task": "detect", "classes": run.data.classes, "input_size": list(size), "arch": a.arch}, model, "cpu")
        im = Image.open(data.samples[0].path).convert("RGB").resize((640, 480))
        lat, raw = [], []
        x = torch.rand(1, 3, 480, 640) * 255
        for i in range(22):
            t0 = time.perf_counter()
            predict_image(lm, im, 0.3)
            lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with torch.no_grad():
                model.predict(x)
            raw.append(time.perf_counter() - t0)
        res["infer_ms_640x480_letterboxed"] = round(1000 * statistics.median(lat[2:]), 1)
        res["infer_ms_640x480_native_input"] = round(1000 * statistics.median(raw[2:]), 1)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:34} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
