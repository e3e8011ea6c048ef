"""The photoreal engine's benchmark: `python -m jobs.render.photoreal_bench --bench` prints one
JSON line of Cycles frames/s at 640x480 and 64 samples (gpu.bench_child runs it in a child of
its own; bpy is imported only there)."""

from __future__ import annotations

from pathlib import Path

from jobs.render.photoreal import PhotorealRenderer, PhotorealUnavailable


def benchmark(device: str = "cpu", quick: bool = False) -> dict:
    """Cycles frames of the demo shelf at a small size, scaled to 640x480 at 64 samples
    (Cycles time grows with pixels x samples; scene setup is left out of the timing)."""
    import statistics
    import time

    from jobs.render import randomize
    from jobs.render.library import build_library
    from jobs.render.spec import load_scene

    w, h, samples, rounds = (96, 72, 8, 1) if quick else (160, 120, 16, 3)
    spec = load_scene(Path(__file__).resolve().parents[2] / "resources" / "scenes" / "retail_shelf.json")
    spec = spec.model_copy(update={"engine": "photoreal",
                                   "outputs": spec.outputs.model_copy(update={"width": w, "height": h}),
                                   "photoreal": spec.photoreal.model_copy(update={"samples": samples})})
    lib = build_library(spec)
    r = PhotorealRenderer(spec, lib, None, device="cpu" if device == "cpu" else "auto")
    try:
        runs = []
        for k in range(rounds):
            fs, ex = randomize.frame(spec, [g.info for g in lib], 0, k)
            t0 = time.perf_counter()
            r.render(fs, ex)
            runs.append(time.perf_counter() - t0)
    finally:
        r.close()
    scale = (640 * 480) / (w * h) * 64 / samples
    return {"fps": round(1.0 / (statistics.median(runs) * scale), 6), "runs": [round(1.0 / (x * scale), 6) for x in runs],
            "width": w, "height": h, "samples": samples, "renderer": r.info["renderer"]}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import sys

    ap = argparse.ArgumentParser(prog="jobs.render.photoreal_bench", description="Cycles benchmark (one JSON line)")
    ap.add_argument("--bench", action="store_true", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    try:
        res = benchmark(a.device, a.quick)
    except PhotorealUnavailable as e:
        print(str(e), file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
