"""Verification of a delivered model: re-evaluate it on a held-out dataset the buyer keeps.

The card's headline metric (`card["metric"]`: mAP@0.5 for detectors, accuracy for
classifiers) must be reproduced: measured >= claimed - tolerance. A model better than its
card passes; a card that claims more than the model does fails. The card is the miner's own
figure, so the tolerance only guards against an overstated card: the quality bar is
`min_metric` (measured >= min_metric), which an order on the order market always names
(app.orders.train.check_min_metric) — a card that claims 0.0 passes the first test, not this.
"""

from __future__ import annotations

from pathlib import Path

from jobs.train import TrainError
from jobs.train.data import build_cls_cache, build_det_cache, load_coco
from jobs.train.evaluate import evaluate_classifier, evaluate_detector
from jobs.train.infer import load_model

DEFAULT_TOLERANCE = 0.05


def verify_model(model_path: Path, datasets: list[Path], tolerance: float = DEFAULT_TOLERANCE,
                 device: str = "cpu", threads: int = 2, weights: Path | None = None, *,
                 expect_arch: str | None = None, expect_classes: list[str] | None = None,
                 min_metric: float | None = None) -> dict:
    if not 0 <= tolerance <= 1:
        raise TrainError("tolerance must be between 0 and 1")
    lm = load_model(model_path, device, weights)
    if expect_arch is not None and lm.card["arch"] != expect_arch:
        return _failed(f"the model is a {str(lm.card['arch'])[:64]}, not the {expect_arch} ordered")
    if expect_classes is not None and sorted(lm.classes) != sorted(expect_classes):
        return _failed(f"the model knows classes {lm.classes[:8]}, not the data's {expect_classes[:8]}")
    metric = lm.card.get("metric")
    claimed = (lm.card.get("metrics") or {}).get(metric)
    if metric not in ("map50", "map", "accuracy") or not isinstance(claimed, (int, float)):
        raise TrainError("the model card states no metric to verify")
    data = load_coco(datasets, classes=lm.classes)
    if lm.task == "detect":
        cache = build_det_cache(data.samples, lm.input_size, threads)
        measured = evaluate_detector(lm.model, cache, lm.classes, device)
    else:
        cache = build_cls_cache(data.samples, lm.input_size, threads)
        measured = evaluate_classifier(lm.model, cache, lm.classes, device)
    value = float(measured[metric])
    passed = value >= float(claimed) - tolerance
    reason = None if passed else (f"{metric} {value:.3f} on the held-out data is below the card's {float(claimed):.3f} "
                                  f"minus tolerance {tolerance}")
    if passed and min_metric is not None and value < min_metric:
        passed, reason = False, f"{metric} {value:.3f} on the held-out data is below the {min_metric:.3f} ordered"
    return {"passed": passed, "metric": metric, "claimed": float(claimed), "measured": round(value, 4),
            "tolerance": tolerance, "min_metric": min_metric, "images": len(data.samples), "reason": reason,
            "metrics": {k: v for k, v in measured.items() if isinstance(v, (int, float))},
            "datasets": data.shards}


def _failed(reason: str) -> dict:
    return {"passed": False, "metric": None, "claimed": None, "measured": None, "images": 0, "reason": reason}
