"""`kminer render` (render, merge, verify), the job engines, and user meshes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main

from .conftest import small_scene


def _scene_file(tmp_path, **outputs) -> Path:
    p = tmp_path / "scene.json"
    data = small_scene(**outputs)
    data["layout"]["rows"] = 2  # fewer objects: quicker
    p.write_text(json.dumps(data))
    return p


def test_cli_render_merge_verify(tmp_path, capsys):
    scene = _scene_file(tmp_path)
    assert main(["render", str(scene), "--count", "2", "--out", str(tmp_path / "a"), "--seed", "5", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["counts"]["images"] == 2 and card["seed"] == 5
    assert main(["render", str(scene), "--start", "2", "--count", "1", "--out", str(tmp_path / "b"), "--seed", "5"]) == 0
    assert "rendered 1 frames" in capsys.readouterr().out
    assert main(["render", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m")]) == 0
    assert "ranges [[0, 3]]" in capsys.readouterr().out
    assert main(["render", "verify", str(tmp_path / "m"), "--sample", "1", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["passed"] and rep["mode"] == "exact"


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    data = small_scene()
    data["layout"]["spacing"] = -1
    bad.write_text(json.dumps(data))
    assert main(["render", str(bad), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kminer: error: layout.spacing:") and "\n" not in err
    assert not (tmp_path / "o").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["render", str(_scene_file(tmp_path)), "--count", "1", "--out", str(tmp_path / "full")]) == 1
    assert "not empty" in capsys.readouterr().err
    for out, why in ((tmp_path / "full" / "x", "is a file, not a folder"), (tmp_path / "full" / "x" / "sub", "cannot create")):
        assert main(["render", str(_scene_file(tmp_path)), "--count", "1", "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("kminer: error: ") and why in err and "\n" not in err
    assert (tmp_path / "full" / "x").read_text() == "x"   # the file is left as it was
    assert main(["render", "verify", str(tmp_path / "nothing")]) == 1
    assert "no dataset.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["render", str(bad), "--count", "many"])
    assert e.value.code == 2


def _ctx(tmp_path, kind, params, inputs, name=None):
    from jobs.engine import JobContext

    events = []
    out = tmp_path / f"out-{name or kind}"
    out.mkdir()
    ctx = JobContext(job_id="t", kind=kind, params=params, inputs=inputs, out_dir=out, work_dir=tmp_path,
                     device="cpu", seed=1, _emit=events.append)
    return ctx, events


def test_engines_render_and_verify(tmp_path):
    from jobs.engine import EngineError, resolve_engine

    scene = _scene_file(tmp_path)
    ctx, events = _ctx(tmp_path, "render", {"count": 2}, {"scene": scene})
    res = resolve_engine("render")(ctx)
    assert res["counts"]["images"] == 2 and res["gl"]["gl_platform"] == "egl"
    fractions = [e["fraction"] for e in events if e["type"] == "progress"]
    assert fractions == [0.5, 1.0]
    vctx, _ = _ctx(tmp_path, "verify-render", {"sample": 1}, {"dataset": ctx.out_dir})
    rep = resolve_engine("verify-render")(vctx)
    assert rep["passed"] and (vctx.out_dir / "verify.json").is_file()
    bad, _ = _ctx(tmp_path, "render", {"scene": {"name": "x"}}, {}, name="bad")
    with pytest.raises(EngineError, match="assets"):
        resolve_engine("render")(bad)


def test_user_mesh_asset_by_hash(tmp_path):
    import trimesh

    from common.fsutil import sha256_file
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import SceneError, parse_scene

    mug = trimesh.creation.annulus(r_min=0.035, r_max=0.04, height=0.09)  # z-up, like most CAD exports
    path = tmp_path / "mug.stl"
    mug.export(path)
    h = sha256_file(path)
    data = small_scene(path=Path(__file__).resolve().parents[2] / "resources" / "scenes" / "table_top.json", count=1)
    data["assets"] = [{"name": "mug", "label": "mug", "kind": "mesh", "mesh": h, "height": [0.09, 0.1], "up_axis": "z",
                       "material": {"color": [[0.8, 0.2, 0.2], [0.9, 0.3, 0.3]]}}]
    data["layout"]["objects"] = [3, 3]
    spec = parse_scene(data)
    with pytest.raises(SceneError, match=r"assets.mug.mesh: input file .* was not provided"):
        render_dataset(spec, tmp_path / "x")
    card = render_dataset(spec, tmp_path / "ds", inputs={h: path})
    assert card["class_histogram"]["mug"] >= 1
    meta = json.loads((tmp_path / "ds" / "meta" / "000000.json").read_text())
    assert len(meta["objects"]) == 3 and meta["objects"][0]["category"] == "mug"
    other = tmp_path / "other.stl"
    other.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(SceneError, match="does not match its sha256"):
        render_dataset(spec, tmp_path / "y", inputs={h: other})


def test_user_images_and_output_options(tmp_path):
    """Label and background images by sha256; JPEG RGB; depth and semantic masks off."""
    import numpy as np
    from PIL import Image

    from common.fsutil import sha256_file
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    lab = tmp_path / "label.png"
    # 37 px wide: RGB rows not a multiple of 4 bytes (the upload must not read past them)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 37, 3), dtype=np.uint8)).save(lab)
    bg = tmp_path / "bg.jpg"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(bg)
    hl, hb = sha256_file(lab), sha256_file(bg)
    data = small_scene(count=1, rgb_format="jpg", depth=False, semantic_mask=False)
    data["layout"]["rows"] = 2
    data["assets"][0]["material"]["label"] = {"images": [hl]}
    data["background"] = {"image": hb}
    card = render_dataset(parse_scene(data), tmp_path / "ds", inputs={hl: lab, hb: bg})
    d = tmp_path / "ds"
    assert card["counts"]["images"] == 1
    assert (d / "images" / "000000.jpg").is_file() and not any((d / "depth").iterdir())
    assert not any((d / "masks" / "semantic").iterdir())
    coco = json.loads((d / "annotations.json").read_text())
    assert coco["images"][0]["file_name"] == "images/000000.jpg" and coco["images"][0]["depth_file"] is None


def test_shadows_render(tmp_path):
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import parse_scene

    data = small_scene(count=1)
    data["layout"]["rows"] = 1
    data["lights"].update(shadows=True, kinds=["directional", "spot"])
    card = render_dataset(parse_scene(data), tmp_path / "ds")
    assert card["counts"]["annotations"] > 0


@pytest.mark.parametrize("fmt", ["obj", "ply", "glb", "stl"])
def test_mesh_formats_load_and_normalise(tmp_path, fmt):
    import trimesh

    from common.fsutil import sha256_file
    from jobs.render.library import build_library
    from jobs.render.spec import parse_scene

    box = trimesh.creation.box((0.2, 0.1, 0.3))
    box.apply_translation([5, 7, 9])
    path = tmp_path / f"thing.{fmt}"
    box.export(path)
    h = sha256_file(path)
    data = small_scene()
    data["assets"] = [{"name": "t", "label": "thing", "kind": "mesh", "mesh": h, "height": [0.2, 0.2]}]
    (geo,) = build_library(parse_scene(data), {h: path})
    lo, hi = geo.bounds
    assert np.allclose(lo, [-0.2, 0, -0.3], atol=1e-6) and np.allclose(hi, [0.2, 0.2, 0.3], atol=1e-6)  # y: 0.1 -> 0.2 m


def test_garbage_mesh_is_a_clear_error(tmp_path):
    from common.fsutil import sha256_file
    from jobs.render.library import build_library
    from jobs.render.spec import SceneError, parse_scene

    path = tmp_path / "junk.obj"
    path.write_bytes(b"this is not a mesh\n")
    h = sha256_file(path)
    data = small_scene()
    data["assets"] = [{"name": "t", "label": "thing", "kind": "mesh", "mesh": h, "height": [0.2, 0.2]}]
    with pytest.raises(SceneError, match="assets.t.mesh"):
        build_library(parse_scene(data), {h: path})


def test_cli_preview_is_the_dataset_frame(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    scene = _scene_file(tmp_path)
    out = tmp_path / "p.png"
    assert main(["render", "preview", str(scene), "--frame", "1", "--seed", "5", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["annotations"] and out.is_file()
    assert main(["render", str(scene), "--start", "1", "--count", "1", "--seed", "5", "--out", str(tmp_path / "d")]) == 0
    ds = np.asarray(Image.open(tmp_path / "d" / "images" / "000001.png"))
    assert np.array_equal(np.asarray(Image.open(out)), ds)
    meta = json.loads((tmp_path / "d" / "meta" / "000001.json").read_text())
    assert [a["bbox"] for a in meta["annotations"]] == [a["bbox"] for a in summary["annotations"]]
    assert main(["render", "preview", str(scene), "--frame", "1", "--seed", "5", "--out", str(tmp_path / "b.png"), "--boxes"]) == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), np.asarray(Image.open(out)))


def test_cli_preview_out_problems_are_one_line(tmp_path, capsys):
    scene = _scene_file(tmp_path)
    (tmp_path / "afile").write_text("keep")
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")   # a dangling link: the OS refuses the folder
    (tmp_path / "shots.png").mkdir()
    for out, why in ((tmp_path / "afile" / "p.png", "is a file, not a folder"), (tmp_path / "shots.png", "is a folder"),
                     (tmp_path / "gone" / "p.png", str(tmp_path / "gone"))):
        assert main(["render", "preview", str(scene), "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("kminer: error: ") and why in err and "\n" not in err and "internal" not in err, err
    assert (tmp_path / "afile").read_text() == "keep" and not (tmp_path / "nowhere").exists()
