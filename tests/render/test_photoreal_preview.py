"""The preview server's photoreal op (a small Cycles frame of the editor's view), in-process,
and through PreviewService's second child."""

from __future__ import annotations

import importlib.util
import io
import json
import time

import numpy as np
import pytest

from app.runtime import Orbit, PreviewService
from tests.render.conftest import SHELF, small_scene

pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="the photoreal extra (bpy) is not installed; `make test` installs it")


def _photo_spec() -> dict:
    return dict(small_scene(SHELF), engine="photoreal", photoreal={"samples": 4, "denoise": True, "sky": True})


def _replies(reqs: list[dict]) -> list[tuple[dict, list[np.ndarray]]]:
    from jobs.render.preview import serve

    out = io.BytesIO()
    serve(io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in reqs)), out)
    buf, got = out.getvalue(), []
    pos = 0
    while pos < len(buf):
        end = buf.index(b"\n", pos)
        head = json.loads(buf[pos:end])
        pos = end + 1
        imgs = []
        for m in head.get("images", []):
            n = m["width"] * m["height"] * 3
            imgs.append(np.frombuffer(buf[pos:pos + n], np.uint8).reshape(m["height"], m["width"], 3))
            pos += n
        got.append((head, imgs))
    return got


def test_photoreal_op_is_deterministic_follows_the_camera_and_rejects_bad_sizes_in_one_line():
    cam = {"yaw": 0.0, "pitch": 5.0, "distance": 1.6}
    base = {"op": "photoreal", "width": 64, "height": 48, "samples": 2, "camera": cam, "frame": 0}
    (h1, [a]), (h2, [b]), (h3, [c]), (h4, _), (h5, _) = _replies([
        dict(base, id=1, spec=_photo_spec()), dict(base, id=2), dict(base, id=3, camera=dict(cam, yaw=30.0)),
        dict(base, id=4, width=8), dict(base, id=5, samples=1000)])
    assert h1["ok"] and h1["rebuilt"] and h1["samples"] == 2 and h1["device"].startswith("Cycles")
    assert a.shape == (48, 64, 3) and a.std() > 10
    assert h2["ok"] and not h2["rebuilt"] and np.array_equal(a, b)  # same view, same seed: the same bytes
    assert h3["ok"] and not h3["rebuilt"] and np.abs(a.astype(int) - c).mean() > 5  # the orbit moved the camera
    assert h4["error"] == "photoreal preview size 8x48: must lie within 16..1024 pixels"
    assert "samples=1000" in h5["error"] and "\n" not in h5["error"]


def test_service_renders_photoreal_in_a_second_child_and_cancels_waiting_requests():
    svc = PreviewService()
    try:
        spec = _photo_spec()
        view = svc.view(spec, Orbit(0, 5, 1.6), width=160, height=120).result(120)
        futs = [svc.photoreal(spec, Orbit(k * 10.0, 5, 1.6), width=48, height=36, samples=2) for k in range(4)]
        last = futs[-1].result(120)
        assert last.images[0].width == 48 and last.samples == 2
        assert sum(f.cancelled() for f in futs[:-1]) >= 2  # one in flight at most, the newest waits
        busy = svc.photoreal(spec, Orbit(0, 5, 1.6), width=160, height=120, samples=4)  # about a second
        deadline = time.monotonic() + 60
        while not (busy.running() or busy.done()) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert busy.running()  # sent to the child: the next ones wait behind it
        waiting = svc.photoreal(spec, Orbit(0, 5, 1.6), width=48, height=36, samples=2)
        newer = svc.photoreal(spec, Orbit(5, 5, 1.6), width=48, height=36, samples=2)
        assert waiting.cancelled() and not newer.done()  # replaced by the newer one
        svc.cancel("photoreal")  # the scene changed: drop what waits; the frame in flight finishes
        assert newer.cancelled() and busy.result(120).images[0].width == 160
        assert svc.photoreal_pid not in (None, svc.pid) and view.images[0].width == 160
    finally:
        svc.close()
