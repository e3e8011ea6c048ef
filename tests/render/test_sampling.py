"""Layout sampling without GL: placement rules, determinism, fill rate."""

from __future__ import annotations

import math

import numpy as np

from jobs.render.library import build_library
from jobs.render.sampling import sample_frame
from jobs.render.spec import parse_scene

from .conftest import TABLE, small_scene


def _frames(data, n=5, seed=0):
    spec = parse_scene(data)
    infos = [g.info for g in build_library(spec)]
    return spec, infos, [sample_frame(spec, infos, seed, i) for i in range(n)]


def _extent(infos, o):
    w, h, d = np.asarray(infos[o.asset].nominal) * o.scale
    return w, h, d


def test_shelf_products_fit_their_row_and_do_not_overlap():
    for placement in ("grid", "random"):
        data = small_scene()
        data["layout"].update(placement=placement, yaw_jitter_deg=0, position_jitter=0)
        spec, infos, frames = _frames(data)
        lay = spec.layout
        for fs in frames:
            assert fs.objects
            rows: dict[tuple[float, float], list] = {}
            for o in fs.objects:
                w, h, d = _extent(infos, o)
                x, y, z = o.pose[:3, 3]
                assert -lay.width / 2 <= x - w / 2 and x + w / 2 <= lay.width / 2
                assert -lay.depth / 2 <= z - d / 2 and z + d / 2 <= lay.depth / 2
                assert h <= lay.spacing - lay.board_thickness + 1e-9
                rows.setdefault(round(y, 6), []).append((x - w / 2, x + w / 2, z - d / 2, z + d / 2))
            for items in rows.values():
                for i, a in enumerate(items):
                    for b in items[i + 1:]:
                        overlap_x = min(a[1], b[1]) - max(a[0], b[0])
                        overlap_z = min(a[3], b[3]) - max(a[2], b[2])
                        assert overlap_x <= 1e-9 or overlap_z <= 1e-9, (placement, a, b)


def test_table_objects_do_not_overlap():
    import json

    data = json.loads(TABLE.read_text())
    _, infos, frames = _frames(data, n=8)
    for fs in frames:
        pts = [(o.pose[0, 3], o.pose[2, 3], 0.5 * math.hypot(*(_extent(infos, o)[::2]))) for o in fs.objects]
        for i, (x, z, r) in enumerate(pts):
            for x2, z2, r2 in pts[i + 1:]:
                assert math.hypot(x - x2, z - z2) >= r + r2 - 1e-9


def test_fill_rate_and_seed():
    data = small_scene()
    data["layout"]["fill_rate"] = [0.3, 0.3]
    _, _, sparse = _frames(data)
    data["layout"]["fill_rate"] = [1.0, 1.0]
    _, _, full = _frames(data)
    assert sum(len(f.objects) for f in sparse) < 0.6 * sum(len(f.objects) for f in full)
    _, _, again = _frames(data)
    _, _, other = _frames(data, seed=1)
    assert [len(f.objects) for f in again] == [len(f.objects) for f in full]
    assert np.array_equal(again[3].camera_pose, full[3].camera_pose)
    assert not np.array_equal(other[3].camera_pose, full[3].camera_pose)
