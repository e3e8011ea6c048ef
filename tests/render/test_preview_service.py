"""The preview server and its client: real child processes rendering with EGL."""

from __future__ import annotations

import io
import json
import os
import signal
import time

import pytest

from app.runtime import Orbit, PreviewError, PreviewService, default_orbit
from tests.render.conftest import SHELF, TABLE, small_scene


@pytest.fixture(scope="module")
def service():
    svc = PreviewService().start()
    yield svc
    svc.close()


def _spec(**outputs):
    return small_scene(SHELF, **outputs)


def test_server_answers_a_bad_spec_with_one_line_naming_the_field():
    from jobs.render.preview import serve

    bad = _spec()
    bad["layout"]["rows"] = 0
    reqs = [{"id": 1, "op": "view", "spec": bad}, {"id": 2, "op": "view"}, {"id": 3, "op": "bogus", "spec": _spec()}]
    out = io.BytesIO()
    serve(io.BytesIO(b"".join(json.dumps(r).encode() + b"\n" for r in reqs)), out)
    lines = out.getvalue().split(b"\n")
    first, second = json.loads(lines[0]), json.loads(lines[1])
    assert first["ok"] is False and first["error"].startswith("layout.rows:") and "\n" not in first["error"]
    assert second["error"] == first["error"]  # no spec sent again: the same reason
    assert json.loads(lines[2])["error"] == "unknown preview request 'bogus'"


def test_orbit_moves_only_the_camera_and_changes_the_frame(service):
    spec = _spec()
    a = service.view(spec, Orbit(0, 5, 1.6), width=160, height=120).result(120)
    b = service.view(spec, Orbit(25, 5, 1.6), width=160, height=120).result(60)
    assert a.images[0].width == 160 and len(a.images[0].rgb) == 160 * 120 * 3
    assert not b.rebuilt
    assert a.images[0].rgb != b.images[0].rgb
    changed = dict(spec, layout=dict(spec["layout"], rows=2))
    c = service.view(changed, Orbit(25, 5, 1.6), width=160, height=120).result(60)
    assert c.rebuilt and c.images[0].objects < b.images[0].objects


def test_newest_view_wins_and_stale_ones_are_cancelled(service):
    spec = _spec()
    futs = [service.view(spec, Orbit(k, 5, 1.6), width=160, height=120) for k in range(12)]
    last = futs[-1].result(60)
    assert last.images[0].width == 160
    assert sum(f.cancelled() for f in futs) >= 9  # at most one in flight and one waiting


def test_invalid_spec_fails_fast_with_the_field_path(service):
    bad = _spec()
    bad["camera"]["znear"] = 50.0
    with pytest.raises(PreviewError, match=r"^camera: znear must be below zfar"):
        service.view(bad, Orbit()).result(5)


def test_sample_returns_frames_with_boxes_and_a_legend(service):
    spec = small_scene(TABLE, count=20)
    res = service.sample(spec, 3, seed=7).result(120)
    assert len(res.images) == 3 and all(i.boxes > 0 for i in res.images)
    assert len({i.frame for i in res.images}) == 3
    assert [name for name, _c in res.legend][:2] == ["soda_can", "water_bottle"]


def test_large_sample_frames_come_back_scaled_to_fit(service):
    spec = small_scene(TABLE, count=5, width=1200, height=900)
    res = service.sample(spec, 1, seed=1).result(120)
    assert (res.images[0].width, res.images[0].height) == (960, 720) and res.images[0].boxes > 0


def test_killed_child_is_restarted():
    svc = PreviewService().start()
    try:
        spec = _spec()
        svc.view(spec, default_orbit(spec), width=96, height=72).result(120)
        pid = svc.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        res = None
        while res is None and time.monotonic() < deadline:
            try:
                res = svc.view(spec, default_orbit(spec), width=96, height=72).result(120)
            except PreviewError as e:
                assert e.crashed
        assert res is not None and res.rebuilt
        assert svc.restarts == 1 and svc.pid not in (None, pid)
    finally:
        svc.close()
