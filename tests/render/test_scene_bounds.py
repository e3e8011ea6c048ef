"""Poison scenes (issue 16): every number bounded and finite, object and pixel budgets, and a
work estimate from the spec that sets the run's time limit instead of the order's deadline."""

from __future__ import annotations

import json

import pytest

from jobs.render.spec import (MAX_OBJECTS_PER_FRAME, MAX_SHARD_PIXELS, SceneError, load_scene, parse_render_params,
                              parse_scene, parse_scene_bytes)

from .conftest import SHELF, TABLE, small_scene


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["layout"].update(kind="table", objects=[1, 1_000_000_000]), "layout.objects: both ends must lie within [0, 500]"),
    (lambda d: d["distractors"].update(count=[0, 1_000_000_000]), "distractors.count"),
    (lambda d: d["camera"].update(distance=[1.0, float("nan")]), "camera.distance"),
    (lambda d: d["camera"].update(znear=float("inf")), "camera.znear"),
    (lambda d: d["lights"].update(intensity=[1.0, 1e300]), "lights.intensity"),
    (lambda d: d["assets"][0].update(width=[1e-300, 0.1]), "assets[0].width"),
    (lambda d: d["assets"][0].update(weight=float("inf")), "assets[0].weight"),
    (lambda d: d["layout"].update(gap=[-1.0, -1.0]), "layout.gap"),
    (lambda d: d["layout"].update(width=10, rows=12, depth_rows=10, gap=[0, 0]), "(scene): layout: up to"),
    (lambda d: d["assets"][0]["material"].update(label={"art_seed": 2**40}), "assets[0].material.label.art_seed"),
])
def test_poison_numbers_are_refused_naming_the_field(mutate, field):
    data = small_scene()
    mutate(data)
    with pytest.raises(SceneError) as e:
        parse_scene(data)
    assert str(e.value).startswith(field), str(e.value)


def test_nan_and_infinity_in_published_bytes_are_refused_before_validation():
    text = json.dumps(small_scene()).replace('"count": 6', '"count": NaN')
    with pytest.raises(SceneError, match="NaN is not allowed"):
        parse_scene_bytes(text.encode())
    with pytest.raises(SceneError, match="nested too deep"):
        parse_scene_bytes(b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_demo_scenes_fit_the_budgets_with_room():
    for path in (SHELF, TABLE):
        scene = load_scene(path)
        assert scene.max_objects_per_frame() < MAX_OBJECTS_PER_FRAME / 4


def test_a_shards_frames_times_pixels_is_budgeted():
    scene = small_scene()
    scene["outputs"].update(width=4096, height=4096, count=10_000_000)
    with pytest.raises(SceneError, match=r"params.count: 3,000 frames of 4096 x 4096 px .* split the order"):
        parse_render_params({"scene": scene, "start": 0, "count": 3000})
    rp, spec = parse_render_params({"scene": scene, "start": 0, "count": 100})
    assert rp.frames(spec) * 4096 * 4096 <= MAX_SHARD_PIXELS
    with pytest.raises(SceneError, match="params.count"):
        parse_render_params({"scene": scene, "start": 0})  # all ten million frames
    with pytest.raises(SceneError, match="params.start"):
        parse_render_params({"scene": scene, "start": -5, "count": 1})
    with pytest.raises(SceneError, match="params.surprise"):
        parse_render_params({"scene": scene, "surprise": 1})
