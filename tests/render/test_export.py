"""YOLO and KITTI exports of a real render agree with its COCO annotations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from jobs.render.dataset import RenderError
from jobs.render.export import export_dataset


def _coco(d):
    coco = json.loads((d / "annotations.json").read_text())
    by_img: dict[int, list] = {}
    for a in coco["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    return coco, by_img


def test_yolo_boxes_are_the_coco_boxes_normalised(full_run, tmp_path):
    out = tmp_path / "yolo"
    res = export_dataset(full_run, out, "yolo")
    coco, by_img = _coco(full_run)
    assert res["images"] == len(coco["images"]) and res["boxes"] == len(coco["annotations"]) > 0
    data = (out / "data.yaml").read_text()
    assert "nc: " + str(len(coco["categories"])) in data and all(f"'{c['name']}'" in data for c in coco["categories"])
    for im in coco["images"]:
        W, H = im["width"], im["height"]
        assert (out / "images" / f"{im['id']:06d}.png").read_bytes() == (full_run / im["file_name"]).read_bytes()
        rows = [list(map(float, line.split())) for line in (out / "labels" / f"{im['id']:06d}.txt").read_text().splitlines()]
        want = by_img.get(im["id"], [])
        assert len(rows) == len(want)
        for r, a in zip(rows, want):
            x, y, w, h = a["bbox"]
            assert int(r[0]) == a["category_id"] - 1
            assert np.allclose(r[1:], [(x + w / 2) / W, (y + h / 2) / H, w / W, h / H], atol=1e-6)
            assert all(0.0 <= v <= 1.0 for v in r[1:])


def test_kitti_labels_and_calibration_are_consistent(full_run, tmp_path):
    out = tmp_path / "kitti"
    res = export_dataset(full_run, out, "kitti")
    coco, by_img = _coco(full_run)
    assert res["boxes"] == len(coco["annotations"])
    names = {c["id"]: c["name"] for c in coco["categories"]}
    inside = total = 0
    for im in coco["images"]:
        stem = f"{im['id']:06d}"
        assert Image.open(out / "training" / "image_2" / f"{stem}.png").size == (im["width"], im["height"])
        calib = dict(line.split(": ", 1) for line in (out / "training" / "calib" / f"{stem}.txt").read_text().splitlines())
        P2 = np.array(calib["P2"].split(), float).reshape(3, 4)
        meta = json.loads((full_run / "meta" / f"{stem}.json").read_text())
        assert np.allclose(P2[:, :3], meta["camera"]["K"], atol=1e-4)
        lines = (out / "training" / "label_2" / f"{stem}.txt").read_text().splitlines()
        for line, a in zip(lines, by_img.get(im["id"], []), strict=True):
            f = line.split()
            assert len(f) == 15 and f[0] == names[a["category_id"]]
            x1, y1, x2, y2 = map(float, f[4:8])
            x, y, w, h = a["bbox"]
            assert np.allclose([x1, y1, x2, y2], [x, y, x + w, y + h], atol=0.01)
            hh, ww, ll = map(float, f[8:11])
            loc = np.array(list(map(float, f[11:14])))
            assert hh > 0 and ww > 0 and ll > 0 and loc[2] > 0  # in front of the camera (z forward)
            # the object's 3D centre (half its height above the bottom; y points down) projects into its box
            c = P2 @ np.append(loc - [0, hh / 2, 0], 1.0)
            u, v = c[0] / c[2], c[1] / c[2]
            total += 1
            inside += x1 - 2 <= u <= x2 + 2 and y1 - 2 <= v <= y2 + 2
    assert total and inside / total > 0.9


def test_export_refuses_a_bad_format_and_a_full_output(full_run, tmp_path):
    with pytest.raises(RenderError, match="unknown export format"):
        export_dataset(full_run, tmp_path / "x", "voc")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(RenderError, match="not empty"):
        export_dataset(full_run, tmp_path / "full", "yolo")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_cli_export(full_run, tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "cli", "render", "export", str(full_run), "--format", "yolo",
                        "--out", str(tmp_path / "y"), "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["format"] == "yolo" and (tmp_path / "y" / "data.yaml").is_file()
