"""Evaluation: COCO mAP with pycocotools for detectors, top-1 accuracy for classifiers.

Predictions are made on the letterboxed cache and mapped back to source pixels, so the
ground truth is the dataset's own annotations, untouched.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from jobs.train.boxes import unletterbox
from jobs.train.data import ClsCache, DetCache


def predict_cache(model, cache: DetCache, device: str, batch: int = 16, score_threshold: float = 0.01,
                  channels_last: bool = False) -> list[dict]:
    """COCO result rows (image_id = index in the cache, category_id = class index + 1)."""
    rows: list[dict] = []
    was = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(cache), batch):
            x = cache.images[start:start + batch].to(device, non_blocking=True).float()
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            dets = model.predict(x, score_threshold=score_threshold, max_det=100)
            for j, d in enumerate(dets):
                i = start + j
                s = cache.samples[i]
                sx, sy, px, py = cache.lb[i]
                b = unletterbox(d.boxes.float().cpu(), sx, sy, px, py, s.width, s.height)
                for bb, sc, lab in zip(b.tolist(), d.scores.tolist(), d.labels.tolist()):
                    rows.append({"image_id": i, "category_id": int(lab) + 1,
                                 "bbox": [bb[0], bb[1], bb[2] - bb[0], bb[3] - bb[1]], "score": float(sc)})
    model.train(was)
    return rows


def coco_map(cache: DetCache, classes: list[str], rows: list[dict]) -> dict:
    """mAP@0.5 and mAP@0.5:0.95 (COCO definition) and per-class AP@0.5 of `rows` on the cache's images."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns = [], []
    for i, s in enumerate(cache.samples):
        images.append({"id": i, "width": s.width, "height": s.height})
        for b, lab, area, crowd in zip(s.boxes.tolist(), s.labels.tolist(), s.areas.tolist(), s.crowd.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab) + 1,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": float(area), "iscrowd": int(crowd)})
    result = {"map50": 0.0, "map": 0.0, "per_class_ap50": {c: 0.0 for c in classes},
              "val_images": len(images), "val_boxes": len(anns)}
    if not rows or not anns:
        return result
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns,
                      "categories": [{"id": k + 1, "name": n} for k, n in enumerate(classes)]}
        gt.createIndex()
        dt = gt.loadRes(rows)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    result["map"] = max(0.0, float(ev.stats[0]))
    result["map50"] = max(0.0, float(ev.stats[1]))
    prec = ev.eval["precision"]  # (T iou, R recall, K class, A area, M maxdets)
    for k, c in enumerate(classes):
        p = prec[0, :, k, 0, -1]
        p = p[p > -1]
        result["per_class_ap50"][c] = float(p.mean()) if p.size else 0.0
    return result


def evaluate_detector(model, cache: DetCache, classes: list[str], device: str, channels_last: bool = False) -> dict:
    return coco_map(cache, classes, predict_cache(model, cache, device, channels_last=channels_last))


def evaluate_classifier(model, cache: ClsCache, classes: list[str], device: str, batch: int = 64) -> dict:
    was = model.training
    model.eval()
    correct = np.zeros(len(classes))
    total = np.zeros(len(classes))
    with torch.no_grad():
        for start in range(0, len(cache), batch):
            x = cache.images[start:start + batch].to(device).float()
            y = cache.labels[start:start + batch]
            pred = model.predict(x).argmax(1).cpu()
            for c in range(len(classes)):
                sel = y == c
                total[c] += int(sel.sum())
                correct[c] += int((pred[sel] == c).sum())
    model.train(was)
    acc = float(correct.sum() / max(1, total.sum()))
    per = {c: float(correct[k] / total[k]) if total[k] else 0.0 for k, c in enumerate(classes)}
    return {"accuracy": acc, "per_class_accuracy": per, "val_crops": int(total.sum())}
