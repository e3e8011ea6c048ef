"""Benchmark the scene editor's live preview (app.preview_service -> kminer preview-server).

    .venv/bin/python bench/bench_preview.py [--scene SCENE.json] [--size 640x480] [--frames 60] [--drag-s 5]

Measures, through the real child process and pipe:
- start + first frame (child start, scene build, first render);
- orbit frames/s: camera-only changes, each request sent when the previous frame arrived;
- drag frames/s: requests posted at 60 Hz for --drag-s seconds (newest wins), frames shown per second;
- rebuild: a spec change (one shelf row fewer) to its first frame;
- sample: 8 random dataset frames with boxes and masks.
Prints one JSON object; the load average is included (the machine is shared).

Measured here (2 shared CPU cores, llvmpipe EGL, retail_shelf, 640x480): see the report of
the scene-editor work; figures vary with the other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.preview_service import PreviewService, default_orbit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", type=Path, default=ROOT / "resources" / "scenes" / "retail_shelf.json")
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--drag-s", type=float, default=5.0)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    spec = json.loads(args.scene.read_text())
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    svc = PreviewService().start()
    try:
        orbit = default_orbit(spec)
        t0 = time.perf_counter()
        svc.view(spec, orbit, width=w, height=h).result(300)
        first_s = time.perf_counter() - t0

        lat, child_ms = [], []
        t0 = time.perf_counter()
        for i in range(args.frames):
            r = svc.view(spec, orbit.moved(d_yaw=(i % 60) - 30, d_pitch=(i % 10) - 5), width=w, height=h).result(60)
            assert not r.rebuilt
            lat.append(r.latency_ms)
            child_ms.append(r.render_ms)
        orbit_fps = args.frames / (time.perf_counter() - t0)

        shown = 0
        futs = []
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < args.drag_s:
            futs.append(svc.view(spec, orbit.moved(d_yaw=k * 0.5), width=w, height=h))
            k += 1
            time.sleep(1 / 60)
        futs[-1].result(60)
        drag_s = time.perf_counter() - t0
        shown = sum(1 for f in futs if not f.cancelled() and f.exception() is None)

        changed = dict(spec, layout=dict(spec["layout"], rows=max(1, spec["layout"].get("rows", 4) - 1))) \
            if spec["layout"]["kind"] == "shelf" else dict(spec, layout=dict(spec["layout"], width=spec["layout"]["width"] * 0.9))
        t0 = time.perf_counter()
        r = svc.view(changed, orbit, width=w, height=h).result(300)
        rebuild_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        s = svc.sample(changed, 8, seed=1).result(300)
        sample_s = time.perf_counter() - t0
        print(json.dumps({
            "scene": args.scene.name, "size": f"{w}x{h}", "first_frame_s": round(first_s, 2),
            "orbit_fps": round(orbit_fps, 1), "orbit_latency_ms_median": round(statistics.median(lat), 1),
            "orbit_latency_ms_p90": round(sorted(lat)[int(0.9 * len(lat))], 1),
            "child_render_ms_median": round(statistics.median(child_ms), 1),
            "drag_requests": len(futs), "drag_frames_shown_per_s": round(shown / drag_s, 1),
            "spec_change_to_frame_s": round(rebuild_s, 2), "rebuilt": r.rebuilt,
            "sample8_s": round(sample_s, 2), "sample8_boxes": [i.boxes for i in s.images],
            "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }, indent=1))
    finally:
        svc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
