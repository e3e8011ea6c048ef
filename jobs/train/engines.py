"""Job engines `train`, `infer` and `verify-train` (registered in jobs.engine.ENGINES).

Inputs by name: `model` is a model folder (card + weights) or the card file, with `weights`
the safetensors file beside it as a second input; every other input of a `train` or
`verify-train` job is a COCO dataset folder (shards, taken in name order); every other input
of an `infer` job is an image file or a folder of images. Parameters are validated by
pydantic models with `extra="forbid"`; any problem is one `EngineError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.engine import EngineError, JobContext
from jobs.train import TrainError
from jobs.train.trainer import CHECKPOINT_NAME, Hooks, TrainConfig


_MODEL_INPUTS = ("model", "weights")


def run_training(datasets: list[Path], cfg: TrainConfig, out_dir: Path, ckpt_path: Path, scratch: Path,
                 hooks: Hooks | None = None) -> dict:
    """One process, or DDP when `cfg.world_size` > 1."""
    if cfg.world_size > 1:
        from jobs.train.ddp import train_ddp

        return train_ddp(datasets, cfg, out_dir, ckpt_path, scratch, hooks)
    from jobs.train.trainer import train

    return train(datasets, cfg, out_dir, ckpt_path, hooks)


def _params(model: type[BaseModel], ctx: JobContext, **extra: Any) -> Any:
    try:
        return model.model_validate({**ctx.params, **extra})
    except ValidationError as e:
        err = e.errors()[0]
        raise EngineError(f"params.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _datasets(ctx: JobContext) -> list[Path]:
    ds = [ctx.inputs[k] for k in sorted(ctx.inputs) if k not in _MODEL_INPUTS]
    if not ds:
        raise EngineError("no dataset input (give one or more COCO folders as inputs)")
    return ds


def train(ctx: JobContext) -> dict[str, Any]:
    """Train on the dataset inputs; weights, card and curves go to out/, the checkpoint to work/."""
    extra: dict[str, Any] = {"device": ctx.device}
    if "seed" not in ctx.params:
        extra["seed"] = ctx.seed
    cfg = _params(TrainConfig, ctx, **extra)
    hooks = Hooks(progress=ctx.progress, log=ctx.log, should_stop=ctx.cancelled)
    try:
        return run_training(_datasets(ctx), cfg, ctx.out_dir, ctx.work_dir / CHECKPOINT_NAME, ctx.work_dir, hooks)
    except TrainError as e:
        raise EngineError(str(e)) from None


class InferParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score_threshold: float = Field(0.3, ge=0, le=1, description="Detections below this score are dropped.")
    max_pixels: int = Field(40_000_000, ge=1, description="Largest image accepted (width x height).")


_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def infer(ctx: JobContext) -> dict[str, Any]:
    """Detect (or classify) in the image inputs; out/results.json and annotated PNGs."""
    from jobs.train.infer import infer_paths, load_model

    p = _params(InferParams, ctx)
    if "model" not in ctx.inputs:
        raise EngineError("no 'model' input (a folder with model_card.json and its weights)")
    images: list[Path] = []
    for k in sorted(ctx.inputs):
        if k in _MODEL_INPUTS:
            continue
        path = ctx.inputs[k]
        images += sorted(f for f in path.rglob("*") if f.suffix.lower() in _IMAGE_EXT) if path.is_dir() else [path]
    try:
        lm = load_model(ctx.inputs["model"], ctx.device, ctx.inputs.get("weights"))
        results = infer_paths(lm, images, ctx.out_dir, p.score_threshold, p.max_pixels)
    except TrainError as e:
        raise EngineError(str(e)) from None
    return {"images": len(results), "detections": sum(len(r.get("detections", [])) for r in results),
            "results": "results.json"}


class VerifyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tolerance: float = Field(0.05, ge=0, le=1, description="How far below the card's metric the measured one may be.")
    arch: str | None = Field(None, max_length=64, description="The architecture ordered (None: any).")
    classes: list[str] | None = Field(None, max_length=1000, description="The classes of the ordered data (None: any).")
    min_metric: float | None = Field(None, ge=0, le=1, description="The least held-out metric ordered (None: none).")


def verify(ctx: JobContext) -> dict[str, Any]:
    """Re-evaluate the `model` input on the held-out dataset inputs; `passed` says if its card holds."""
    from jobs.train.verify import verify_model

    p = _params(VerifyParams, ctx)
    if "model" not in ctx.inputs:
        raise EngineError("no 'model' input to verify")
    try:
        res = verify_model(ctx.inputs["model"], _datasets(ctx), p.tolerance, ctx.device, weights=ctx.inputs.get("weights"),
                           expect_arch=p.arch, expect_classes=p.classes, min_metric=p.min_metric)
    except TrainError as e:
        raise EngineError(str(e)) from None
    if res["measured"] is None:
        ctx.log(f"verify-train: FAIL: {res['reason']}")
    else:
        ctx.log(f"verify-train: {res['metric']} claimed {res['claimed']:.3f}, measured {res['measured']:.3f}: "
                f"{'PASS' if res['passed'] else 'FAIL'}")
    return res
