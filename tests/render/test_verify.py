"""verify-render: an honest dataset passes; tampered pixels or boxes fail."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
from PIL import Image

from jobs.render.verify import verify_dataset


def _copy(full_run, tmp_path):
    d = tmp_path / "ds"
    shutil.copytree(full_run, d)
    return d


def test_honest_dataset_passes_exactly(full_run):
    rep = verify_dataset(full_run, sample=2, sample_seed=1)
    assert rep["passed"], rep["failures"]
    assert rep["mode"] == "exact" and rep["exact_matches"] == 2 and rep["rgb_mad_max"] == 0.0 and rep["box_iou_min"] == 1.0


def test_tampered_pixels_fail(full_run, tmp_path):
    d = _copy(full_run, tmp_path)
    p = d / "images" / "000001.png"
    img = np.asarray(Image.open(p)).copy()
    img[50:54, 70:74] = 255 - img[50:54, 70:74]  # 16 pixels flipped
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    p.write_bytes(buf.getvalue())
    # a careful cheat also fixes the hash in the metadata
    meta_p = d / "meta" / "000001.json"
    meta = json.loads(meta_p.read_text())
    import hashlib

    meta["sha256"]["rgb"] = hashlib.sha256(buf.getvalue()).hexdigest()
    meta_p.write_text(json.dumps(meta, indent=1) + "\n")
    rep = verify_dataset(d, sample=6, sample_seed=0)
    assert not rep["passed"]
    bad = [f for f in rep["frames"] if f["frame"] == 1][0]
    assert not bad["exact"] and 0 < bad["rgb_mad"] < 1.0  # too small for the tolerant metric alone
    assert any("frame 1" in f for f in rep["failures"])


def test_boxes_edited_in_annotations_json_fail_without_rendering_them(full_run, tmp_path):
    d = _copy(full_run, tmp_path)
    coco = json.loads((d / "annotations.json").read_text())
    ann = next(a for a in coco["annotations"] if a["image_id"] == 4)
    ann["bbox"][0] += 3
    (d / "annotations.json").write_text(json.dumps(coco))
    rep = verify_dataset(d, sample=1, sample_seed=5)
    assert not rep["passed"] and any("frame 4: annotations.json differs" in f for f in rep["failures"])


def test_consistently_forged_boxes_fail_on_rerender(full_run, tmp_path):
    d = _copy(full_run, tmp_path)
    coco = json.loads((d / "annotations.json").read_text())
    meta_p = d / "meta" / "000002.json"
    meta = json.loads(meta_p.read_text())
    victim = meta["annotations"][0]["id"]
    for a in meta["annotations"] + [a for a in coco["annotations"] if a["id"] == victim]:
        if a["id"] == victim:
            a["bbox"] = [a["bbox"][0] + a["bbox"][2] / 2, a["bbox"][1], a["bbox"][2], a["bbox"][3]]
    meta_p.write_text(json.dumps(meta, indent=1) + "\n")
    (d / "annotations.json").write_text(json.dumps(coco))
    rep = verify_dataset(d, sample=6, sample_seed=0)
    assert not rep["passed"]
    f2 = [f for f in rep["frames"] if f["frame"] == 2][0]
    assert f2["box_iou_min"] < 0.9 and not f2["exact"]


def test_tolerant_mode_figures(full_run, tmp_path, monkeypatch):
    """On another stack the verdict comes from MAD and IoU: honest data passes there too."""
    from jobs.render import verify as v

    monkeypatch.setattr(v, "_STACK_KEYS", v._STACK_KEYS + ("not-a-key",))
    d = _copy(full_run, tmp_path)
    card = json.loads((d / "dataset.json").read_text())
    card["software"]["not-a-key"] = "other driver"
    (d / "dataset.json").write_text(json.dumps(card))
    rep = verify_dataset(d, sample=1, sample_seed=2)
    assert rep["mode"] == "tolerant" and rep["passed"], rep["failures"]
