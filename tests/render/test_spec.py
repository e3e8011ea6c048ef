"""Scene spec: schema file in sync, demo scenes valid, bad specs named by field."""

from __future__ import annotations

import json

import pytest

from jobs.render.spec import SCHEMA_PATH, SceneError, load_scene, parse_scene, schema_text

from .conftest import SHELF, TABLE, small_scene


def test_schema_file_matches_the_model():
    assert SCHEMA_PATH.read_text() == schema_text(), "run: python -m jobs.render.spec"


def test_demo_scenes_are_valid_and_shelf_has_six_classes():
    shelf = load_scene(SHELF)
    assert len(shelf.categories) >= 6
    assert {a.kind for a in shelf.assets} >= {"box", "can", "bottle", "jar", "bag"}
    assert load_scene(TABLE).layout.kind == "table"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["layout"].update(rows=0), "layout.rows"),
    (lambda d: d["assets"][1].update(height=[0.3, 0.1]), "assets[1].height"),
    (lambda d: d["camera"].update(fov_deg=[50, 400]), "camera"),
    (lambda d: d["outputs"].update(width="wide"), "outputs.width"),
    (lambda d: d["assets"][0].update(kind="sphere"), "assets[0]"),
    (lambda d: d.update(schema_version=2), "schema_version"),
    (lambda d: d["assets"][0]["material"].update(color=[[0.9, 0.9, 0.9], [0.1, 1, 1]]), "assets[0].material"),
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d["assets"].append({"name": "m", "label": "m", "kind": "mesh", "mesh": "abc", "height": [0.1, 0.2]}), "assets[8].mesh"),
    (lambda d: d["lights"].update(count=[1, 20]), "lights"),
    (lambda d: d["layout"].update(kind="pyramid"), "layout"),
])
def test_invalid_scene_names_the_field(mutate, field):
    data = small_scene()
    mutate(data)
    with pytest.raises(SceneError) as e:
        parse_scene(data)
    assert str(e.value).startswith(field), str(e.value)
    assert "\n" not in str(e.value)


def test_duplicate_asset_names_rejected():
    data = small_scene()
    data["assets"][1]["name"] = data["assets"][0]["name"]
    with pytest.raises(SceneError, match="duplicate asset names"):
        parse_scene(data)


def test_bad_json_file_is_a_clear_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{ nope")
    with pytest.raises(SceneError, match="not valid JSON: line 1"):
        load_scene(p)
    with pytest.raises(SceneError, match="not found"):
        load_scene(tmp_path / "missing.json")


def test_spec_hash_is_canonical():
    a = parse_scene(small_scene())
    b = parse_scene(json.loads(json.dumps(small_scene(), indent=4, sort_keys=True)))
    assert a.spec_hash() == b.spec_hash()
    c = parse_scene(small_scene(seed=9))
    assert c.spec_hash() != a.spec_hash()


def test_example_render_job_names_the_shelf_by_its_hash():
    from common.fsutil import sha256_file
    from jobs.spec import load_spec

    path = SHELF.parents[1] / "examples" / "render.json"
    job = load_spec(path)
    assert job.kind == "render"
    ref = job.inputs["scene"]
    assert ref.sha256 == sha256_file(path.parent / ref.uri), "update resources/examples/render.json after editing the scene"
