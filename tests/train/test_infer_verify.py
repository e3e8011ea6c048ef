"""Inference on real images (boxes where the shapes are, EXIF honoured), clear refusals,
and verification: an honest card passes on held-out data, a lying one fails."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from jobs.train import TrainError
from jobs.train.boxes import box_iou
from jobs.train.infer import infer_paths, load_model


def _gt(ds, index):
    import torch

    coco = json.loads((ds / "annotations.json").read_text())
    rows = [a for a in coco["annotations"] if a["image_id"] == index]
    return torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                         for a in rows], dtype=torch.float32), [a["category_id"] - 1 for a in rows]


def test_detections_land_on_the_shapes(trained, shapes_holdout, tmp_path):
    import torch

    model_dir, _ = trained
    lm = load_model(model_dir)
    paths = [shapes_holdout / f"images/{i:06d}.png" for i in range(8)]
    res = infer_paths(lm, paths, tmp_path / "out", score_threshold=0.15)
    hits = total = 0
    for i, r in enumerate(res):
        gt, labels = _gt(shapes_holdout, i)
        total += len(gt)
        if not r["detections"]:
            continue
        pb = torch.tensor([d["box"] for d in r["detections"]])
        iou = box_iou(gt, pb)
        for g in range(len(gt)):
            j = int(iou[g].argmax())
            hits += bool(iou[g, j] >= 0.5 and r["detections"][j]["class_id"] == labels[g])
    assert hits >= 0.5 * total, (hits, total)  # a 16 k-parameter model after 10 s of training
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(saved["results"]) == 8
    assert Image.open(tmp_path / "out" / "000000.png").size == (160, 120)


def test_exif_rotation_is_honoured(trained, shapes_holdout, tmp_path):
    model_dir, _ = trained
    lm = load_model(model_dir)
    src = Image.open(shapes_holdout / "images/000001.png")
    # store it rotated on its side with EXIF orientation 6 (viewer rotates 90 deg clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6
    src.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "side.png", exif=exif)  # lossless, EXIF in eXIf
    upright = infer_paths(lm, [shapes_holdout / "images/000001.png"], score_threshold=0.1)[0]
    rotated = infer_paths(lm, [tmp_path / "side.png"], score_threshold=0.1)[0]
    assert (rotated["width"], rotated["height"]) == (160, 120)
    assert len(rotated["detections"]) == len(upright["detections"]) > 0
    for a, b in zip(sorted(upright["detections"], key=lambda d: d["box"]), sorted(rotated["detections"], key=lambda d: d["box"])):
        assert a["class"] == b["class"]
        assert a["box"] == b["box"]


def test_refusals_are_clear_and_write_nothing(trained, tmp_path, kminer):
    model_dir, _ = trained
    img = tmp_path / "ok.png"
    Image.new("RGB", (64, 48), "white").save(img)
    (tmp_path / "notes.png").write_text("not an image at all")
    lm = load_model(model_dir)
    with pytest.raises(TrainError, match="not an image"):
        infer_paths(lm, [img, tmp_path / "notes.png"], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # the good image was not half-processed
    with pytest.raises(TrainError, match="over the limit of 1000 pixels"):
        infer_paths(lm, [img], max_pixels=1000)
    # a PNG whose header claims 20000 x 20000 pixels (a decompression bomb): refused unread
    import struct
    import zlib

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(TrainError, match="pixels"):
        infer_paths(lm, [bomb])

    r = kminer("infer", str(model_dir), str(tmp_path / "notes.png"))
    assert r.returncode == 1 and "not an image" in r.stderr and r.stderr.count("\n") == 1
    r = kminer("infer", str(model_dir), str(img), "--max-pixels", "100")
    assert r.returncode == 1 and "over the limit" in r.stderr

    # weights swapped for other bytes: refused against the card's hash
    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    w = bad / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(TrainError, match="not the one the card describes"):
        load_model(bad)
    # ... and, with no hash in the card, refused as corrupt
    card = json.loads((bad / "model_card.json").read_text())
    del card["weights"]["sha256"]
    (bad / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(TrainError, match="corrupt"):
        load_model(bad)
    # a card naming another architecture than the weights: mismatch
    shutil.copy(model_dir / "model.safetensors", w)
    card["arch"] = "centernet-s"
    (bad / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(TrainError, match="does not match the model"):
        load_model(bad)
    r = kminer("infer", str(bad), str(img))
    assert r.returncode == 1 and "does not match the model" in r.stderr


def test_cli_infer_json(trained, shapes_holdout, kminer, tmp_path):
    model_dir, _ = trained
    r = kminer("infer", str(model_dir), str(shapes_holdout / "images/000002.png"), "--json", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    det = out["results"][0]["detections"]
    assert det and {"class", "class_id", "score", "box"} <= set(det[0])
    assert (tmp_path / "o" / "000002.png").is_file()


def test_a_model_not_of_the_order_fails_its_check(trained, shapes_holdout):
    """A train order names the architecture, the data's classes and the least metric it pays
    for: a card that honestly claims little, or another model, does not pass."""
    from jobs.train.synthetic import CLASSES
    from jobs.train.verify import verify_model

    model_dir, _ = trained
    ok = verify_model(model_dir, [shapes_holdout], tolerance=0.1, expect_arch="centernet-xs", expect_classes=CLASSES)
    assert ok["passed"], ok
    res = verify_model(model_dir, [shapes_holdout], tolerance=0.1, expect_arch="centernet-s")
    assert not res["passed"] and "not the centernet-s ordered" in res["reason"]
    res = verify_model(model_dir, [shapes_holdout], tolerance=0.1, expect_classes=[*CLASSES, "cat"])
    assert not res["passed"] and "not the data's" in res["reason"]
    res = verify_model(model_dir, [shapes_holdout], tolerance=0.1, min_metric=0.999)
    assert not res["passed"] and "below the 0.999 ordered" in res["reason"]


def test_honest_card_passes_and_lying_card_fails(trained, shapes_holdout, tmp_path, kminer):
    from jobs.train.verify import verify_model

    model_dir, summary = trained
    res = verify_model(model_dir, [shapes_holdout], tolerance=0.1)
    assert res["passed"], res
    assert abs(res["measured"] - summary["metrics"]["map50"]) < 0.2

    liar = tmp_path / "liar"
    shutil.copytree(model_dir, liar)
    card = json.loads((liar / "model_card.json").read_text())
    card["metrics"]["map50"] = 0.99
    (liar / "model_card.json").write_text(json.dumps(card))
    res = verify_model(liar, [shapes_holdout], tolerance=0.1)
    assert not res["passed"] and "below the card's 0.990" in res["reason"]
    r = kminer("train", str(shapes_holdout), "--verify", str(liar), "--tolerance", "0.1")
    assert r.returncode == 1 and r.stdout.startswith("FAIL")


def test_a_card_that_claims_nothing_passes_the_tolerance_but_not_the_least_metric(trained, shapes_holdout, tmp_path):
    """The tolerance only guards against an overstated card: a card that claims 0.0 is never
    "below its card". The order's least metric is the bar; the result carries the figures."""
    from jobs.train.verify import verify_model

    model_dir, _ = trained
    modest = tmp_path / "modest"
    shutil.copytree(model_dir, modest)
    card = json.loads((modest / "model_card.json").read_text())
    card["metrics"]["map50"] = 0.0
    (modest / "model_card.json").write_text(json.dumps(card))
    assert verify_model(modest, [shapes_holdout], tolerance=0.0)["passed"]  # no floor: any model passes
    res = verify_model(modest, [shapes_holdout], tolerance=0.0, min_metric=0.999)
    assert not res["passed"] and res["claimed"] == 0.0 and res["min_metric"] == 0.999 and res["measured"] < 0.999
    assert res["reason"] == f"map50 {res['measured']:.3f} on the held-out data is below the 0.999 ordered"
