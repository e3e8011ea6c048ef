"""Train orders on OrderMarket: a model trained on the buyer's dataset, checked on data the
miner never sees before it is paid.

- `train_order(datasets, params=..., store=..., work_dir=...)`: the buyer cuts its dataset (for
  instance the merged, verified dataset of a finished render order) in two: the training data,
  which it seals and serves as the order's `data` input, and held-out images it keeps in its
  artifact store. The order's job document names the training parameters, the image count and
  classes of the data, and the sha256 of the held-out set (a commitment made before any work).
- `train_shard_spec`: the miner's shard job for `QueueShardWork` (app.orders.render): the
  unsealed data becomes an ordinary `train` job in the miner's own queue, run by its scheduler
  on a device that trains, under its sandbox and watchdog. A train order is one shard.
- `ModelPicker`: the buyer's pick of items to open before paying: the model card and the
  weights (the curves and anything else stay sealed until the key comes with the payment).
- `QueueModelCheck`: the buyer's `verify` callback: a sandboxed `verify-train` job that loads
  the opened card and weights and re-measures the card's metric on the held-out set; the model
  must be of the ordered architecture, know the data's classes, come within `tolerance` of
  its card and reach the order's `min_metric` (required on the order market: the card's figure
  is the miner's own, so a card that claims 0.0 would pass any tolerance). PENDING until the job
  ends; a run that dies is run again (up to MAX_VERIFY_RUNS) before the miner is blamed.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

from jobs.artifacts import ArtifactStore
from jobs.estimate import DEFAULT_ARCH, MAX_TIME_LIMIT_S, REFERENCE_RATES, estimate_job
from app.orders.render import QueuedCheck
from jobs.spec import JobSpec, SpecError
from jobs.train import BUYER_PARAMS
from jobs.train.subset import DatasetError, coco_summary, copy_coco, split_coco

PENDING = "pending"
DATA = "data"
"""The order input holding the training data (one COCO folder)."""
HOLDOUT_FRACTION = 0.2
DEFAULT_TOLERANCE = 0.05
"""The least tolerance a train order gets when the buyer names none (default_tolerance)."""
TOLERANCE_Z = 2.33
"""One-sided 99 %: were the figures binomial, an honest model would measure more than the default
tolerance below its card in about one order of 100 from chance alone (the two image samples
differ). The card's figure is also biased upward (the trainer keeps its best epoch on its
validation split), so honest models fall short somewhat more often than that."""
WIDE_TOLERANCE = 0.3
"""A default tolerance this wide means too few held-out images to tell much: such an order is
refused unless the buyer names its tolerance (train_terms)."""
VAL_FRACTION = 0.1
"""The trainer's validation share when the order sets none (jobs.train.trainer.TrainConfig.val_fraction)."""
VERIFY_WALL_S = 3600
CARD_NAME = "model_card.json"
MAX_WEIGHT_FILES = 4
_IMAGE_EXT = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def train_order(datasets: list[Path], *, params: dict[str, Any], store: ArtifactStore, work_dir: Path,
                holdout: list[Path] | None = None, holdout_fraction: float = HOLDOUT_FRACTION,
                tolerance: float | None = None, min_metric: float | None = None,
                seed: int | None = None) -> tuple[dict, Path]:
    """The order's job document and the folder of training data to serve as input `DATA`
    (`work_dir/data`, new). The held-out images (`holdout`, else `holdout_fraction` of
    `datasets`, drawn by `seed`) go into `store` only. `tolerance` None: default_tolerance of
    the held-out and validation image counts, refused when that is WIDE_TOLERANCE or more
    (train_terms). `min_metric`, the least metric paid for, is required (check_min_metric).
    ValueError (one line) for anything a miner would refuse or a buyer would not mean, before
    anything is escrowed."""
    bad = sorted(set(params) - BUYER_PARAMS)
    if bad:
        raise ValueError(f"train parameter {bad[0]!r} is not one a buyer sets; use {', '.join(sorted(BUYER_PARAMS))}")
    if tolerance is not None and not 0 <= tolerance <= 1:
        raise ValueError("the tolerance must be between 0 and 1")
    check_min_metric(min_metric)
    work_dir = Path(work_dir)
    data, held = work_dir / "data", work_dir / "holdout"
    for d in (data, held):
        if d.exists():
            raise ValueError(f"{d} is in the way")
    try:
        try:
            if holdout:
                n_train, n_held = copy_coco(datasets, data), copy_coco(holdout, held)
            else:
                seed = secrets.randbelow(2**31) if seed is None else seed
                n_train, n_held = split_coco(datasets, data, held, holdout_fraction=holdout_fraction, seed=seed)
            _, classes = coco_summary([data])
            _, held_classes = coco_summary([held])
        except DatasetError as e:
            raise ValueError(str(e)) from None
        unknown = [c for c in held_classes if c not in classes]
        if unknown:
            raise ValueError(f"the held-out data has class {unknown[0]!r}, which the training data lacks")
        spec = JobSpec.model_validate({"id": "train-order", "kind": "train", "params": dict(params),
                                       "resources": {"device": "any", "max_wall_s": MAX_TIME_LIMIT_S}})
        _limit_s(spec, n_train)  # a job no miner would take is refused before anything is escrowed
        if tolerance is None:
            tolerance = planned_tolerance(n_train, params, held_out=n_held)[0]
            train_terms(n_held, tolerance, chosen=False, min_metric=min_metric)
        held_sha = store.put_dir(held)
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(held, ignore_errors=True)
    job = {"engine": "train", "params": dict(params), "images": n_train, "classes": classes,
           "holdout": {"sha256": held_sha, "images": n_held}, "tolerance": tolerance, "min_metric": min_metric}
    return job, data


def check_min_metric(min_metric: float | None) -> float:
    """The least metric a train order on the order market pays for: required, more than 0 and
    at most 1 (ValueError, one line). Without it a card that claims 0.0 is paid whatever it
    measures: the tolerance only guards against a card that overstates its model."""
    if min_metric is None:
        raise ValueError("name the least mAP@0.5 (accuracy for classifiers) the model must measure on the held-out "
                         "images to be paid: the card's figure is the miner's own, so without it any model is paid")
    if not 0 < min_metric <= 1:
        raise ValueError("the least metric must be more than 0 and at most 1")
    return float(min_metric)


def train_terms(held_out: int, tolerance: float, *, chosen: bool, min_metric: float | None) -> str:
    """The held-out check of a train order in one line, as the confirmation shows it; ValueError
    (one line) before any fee is asked when there is no least metric (check_min_metric) or when
    the default tolerance (`chosen` False) is WIDE_TOLERANCE or more: so few held-out images
    tell little about a card, and the buyer must hold out more or name its tolerance."""
    least = check_min_metric(min_metric)
    if not chosen and tolerance >= WIDE_TOLERANCE:
        raise ValueError(f"{held_out} held-out images are too few to check a model's card (the default tolerance "
                         f"would be {tolerance:.2f}): hold out more images, or name the tolerance yourself")
    why = "your tolerance" if chosen else f"the default for {held_out} held-out images"
    return (f"The model is checked here on {held_out} held-out images and paid only if it measures at least "
            f"{least:g} there, and at most {tolerance:.3f} below its card's metric ({why}).")


def default_tolerance(held_out: int, validation: int | None = None, *, z: float = TOLERANCE_Z,
                      p: float = 0.5) -> float:
    """How far below its card's metric a model may measure on the buyer's `held_out` images and
    still be paid, when the buyer names no tolerance. This only guards against a card that
    overstates its model; the quality bar is the order's `min_metric`.

    A heuristic: the card's figure comes from the miner's `validation` images and the check from
    the held-out ones; were the metric a binomial proportion (accuracy), two samples of the same
    p would differ by chance with a standard error sqrt(p(1-p)(1/held_out + 1/validation)). mAP
    is treated alike, though its spread depends on the objects, not only on the images, and the
    card's figure is biased upward (the best epoch on the validation split). The tolerance is z
    (TOLERANCE_Z) of those, at least DEFAULT_TOLERANCE and at most 1; p = 0.5 is the widest, as
    the metric is not known before the work. Without `validation` only the held-out term counts.
    E.g. 17 held-out and 4 validation images: 0.647; 17 held-out alone: 0.283; 200 and 180:
    0.12; 2,000 and 1,800: 0.05 (the floor)."""
    if held_out < 1:
        raise ValueError("a train order needs at least one held-out image")
    var = 1 / held_out + (1 / validation if validation else 0)
    return round(min(1.0, max(DEFAULT_TOLERANCE, z * (p * (1 - p) * var) ** 0.5)), 3)


def planned_tolerance(images: int, params: dict[str, Any], *, held_out: int | None = None,
                      holdout_fraction: float = HOLDOUT_FRACTION) -> tuple[float, int, int]:
    """(tolerance, held-out images, validation images) a train order on `images` images gets by
    default: `held_out` images kept back (a folder of its own), else `holdout_fraction` of
    `images` as train_order splits them; the validation images are the trainer's share
    (`params['val_fraction']`, default VAL_FRACTION) of the training images."""
    if held_out is None:
        held_out = max(1, round(images * holdout_fraction))
        images -= held_out
    vf = params.get("val_fraction", VAL_FRACTION)
    vf = float(vf) if isinstance(vf, (int, float)) and 0 <= vf < 1 else VAL_FRACTION
    val = 0 if vf <= 0 else max(1, round(images * vf))
    return default_tolerance(held_out, val or None), held_out, val


def _limit_s(spec: JobSpec, images: int) -> int:
    """The train job's wall-clock limit from its work on a reference CPU (jobs.estimate), the
    same on both sides; ValueError (one line) when the work cannot be told or is too large."""
    try:
        est = estimate_job(spec, images=images)
    except SpecError as e:
        raise ValueError(str(e)) from None
    return int(est.time_limit_s(REFERENCE_RATES["cpu"], MAX_TIME_LIMIT_S))


def _job_of(doc: dict) -> dict:
    job = doc.get("job")
    if not isinstance(job, dict) or job.get("engine") != "train":
        raise ValueError("not a train order")
    return job


def _count_images(folder: Path) -> int:
    return sum(1 for p in Path(folder).rglob("*") if p.suffix.lower() in _IMAGE_EXT and p.is_file())


def train_shard_spec(doc: dict, shard: int, inputs: dict[str, Path], store: ArtifactStore, *, job_id: str,
                     device: str, max_wall_s: int) -> JobSpec:
    """The `train` job of the order's one shard, on the unsealed `data` input (put in `store`);
    without inputs (pricing, before the claim) the same job with no data yet. The buyer sets only
    BUYER_PARAMS; a dataset larger than the order says (it was priced by that) is refused."""
    job = _job_of(doc)
    if int(doc.get("shards", 0)) != 1 or shard != 0:
        raise ValueError("a train order has exactly one shard")
    params = job.get("params")
    if not isinstance(params, dict) or set(params) - BUYER_PARAMS:
        raise ValueError("the order sets training parameters that are the miner's")
    images = job.get("images")
    if not isinstance(images, int) or images < 1:
        raise ValueError("the order does not say how many images it trains on")
    files: dict[str, Any] = {}
    folder = inputs.get(DATA)
    if folder is not None:
        n = _count_images(folder)
        if n > images:
            raise ValueError(f"the order's data holds {n} images, not the {images} it was priced by")
        files[DATA] = {"sha256": store.put_dir(folder), "type": "dir"}
    body = {"id": job_id, "kind": "train", "params": params, "inputs": files,
            "resources": {"device": device, "max_wall_s": MAX_TIME_LIMIT_S}}
    # the limit follows from the work the order names (not from `max_wall_s`, the render default)
    limit = _limit_s(JobSpec.model_validate(body), images)
    return JobSpec.model_validate({**body, "resources": {"device": device, "max_wall_s": limit}})


def check_train_inputs(doc: dict, headers: dict) -> str | None:
    """Before a claim: the sealed `data` input's header (item names) holds no more images than
    the order was priced by, else why the order is skipped (never claimed, never slashed)."""
    images = train_images(doc)
    header = headers.get(DATA)
    if images is None or header is None:
        return None if images is None else "the order has no training data input"
    n = sum(1 for it in header.items if Path(it.name).suffix.lower() in _IMAGE_EXT)
    if n > images:
        return f"its data holds {n} images, not the {images} it was priced by"
    return None


def train_images(doc: dict) -> int | None:
    """The image count a train order's job was priced by (None: not a train order)."""
    job = doc.get("job")
    n = job.get("images") if isinstance(job, dict) and job.get("engine") == "train" else None
    return n if isinstance(n, int) and n > 0 else None


def model_units(names: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """A train result's sample plan (`KeyRing.limit_samples`): the card and the weights `ModelPicker`
    opens are free (a model is checked whole, on the buyer's held-out data: see
    docs/transport.md, "What a buyer may open before paying"); everything else stays sealed."""
    picks = ModelPicker()({}, 0, names)
    return {}, tuple(picks)


class ModelPicker:
    """The buyer's `pick(doc, shard, names)`: the model card and the weights beside it."""

    def __call__(self, doc: dict, shard: int, names: list[str]) -> list[str]:
        if CARD_NAME not in names:
            return []
        weights = [n for n in names if n.endswith(".safetensors") and "/" not in n][:MAX_WEIGHT_FILES]
        return [CARD_NAME, *weights]


class QueueModelCheck(QueuedCheck):
    """The buyer's `verify(doc, shard, samples)`: a sandboxed `verify-train` of the opened model."""

    def _judge(self, rec) -> str | None:
        r: Any = rec.result if rec.state == "succeeded" else None
        if not isinstance(r, dict):
            return f"the model could not be checked: {(rec.reason or rec.state)[:300]}"
        if r.get("passed"):
            return None
        least = "" if r.get("min_metric") is None else f", least {r.get('min_metric')} ordered"
        figures = "" if r.get("measured") is None else (
            f" ({r.get('metric')} claimed {r.get('claimed')}, measured {r.get('measured')} on {r.get('images')} "
            f"held-out images, tolerance {r.get('tolerance')}{least})")
        return f"{str(r.get('reason') or 'the model does not hold what its card claims')[:300]}{figures}"

    def _queue(self, qid: str, doc: dict, shard: int, samples: dict[str, Path]) -> str | None:
        job = _job_of(doc)
        held = job.get("holdout") or {}
        if not self.store.has(str(held.get("sha256"))):
            raise OSError(f"the held-out data of order {doc['order_id']} is not in this home's store")
        folder = self.work_dir / f"model-{int(doc['order_id'])}-{shard}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        try:
            for name, path in samples.items():
                if name == CARD_NAME or (name.endswith(".safetensors") and "/" not in name):
                    shutil.copyfile(path, folder / name)  # only names the picker asks for reach the folder
            model_sha = self.store.put_dir(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        params: dict[str, Any] = {"tolerance": float(job.get("tolerance", DEFAULT_TOLERANCE)),
                                  "arch": str(job["params"].get("arch", DEFAULT_ARCH)),
                                  "classes": list(job["classes"])}
        if job.get("min_metric") is not None:
            params["min_metric"] = float(job["min_metric"])
        self.queue.add(JobSpec.model_validate({
            "id": qid, "kind": "verify-train", "seed": secrets.randbelow(2**62), "params": params,
            "inputs": {"model": {"sha256": model_sha, "type": "dir"}, "holdout": {"sha256": held["sha256"], "type": "dir"}},
            "resources": {"device": "cpu", "max_wall_s": VERIFY_WALL_S}}))
        return None
