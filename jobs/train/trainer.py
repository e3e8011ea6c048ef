"""The training loop: seeded, checkpointed, exactly resumable; one process or one DDP rank.

`train()` runs in the calling thread. Everything random is derived from the config's seed:
the model init, the epoch's data order (seed, epoch), each step's augmentation (seed, epoch,
step, rank) and the global torch RNG reseeded at each epoch start. A checkpoint at an epoch
end or mid-epoch (on request to stop, or every N steps) holds the whole state, so a run
killed at any moment and started again with the same config ends with the same weights as
an uninterrupted run on the same device and thread count (on CUDA, deterministic kernels
are switched on unless `deterministic` is off).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from common.fsutil import atomic_write_json
from jobs.train import TrainError
from jobs.train.card import CARD_FORMAT, CARD_NAME, WEIGHTS_NAME, plot_curves, software_versions, training_domain
from jobs.train.checkpoint import load_checkpoint, load_weights, save_checkpoint, save_weights
from jobs.train.data import (CocoSet, augment_classification, augment_detection, batch_indices, build_cls_cache,
                             build_det_cache, epoch_order, load_coco, split_indices, step_generator, steps_per_epoch)
from jobs.train.evaluate import evaluate_classifier, evaluate_detector
from jobs.train.models import build_model, count_params, get_arch

CHECKPOINT_NAME = "checkpoint.safetensors"
# fields that do not change the trained weights (left out of the resume guard)
_NO_EFFECT = {"threads", "checkpoint_every_steps", "eval_every", "half_weights", "max_cache_mb", "device"}


_Side = Annotated[int, Field(ge=8, le=4096)]


class TrainConfig(BaseModel):
    """Parameters of a training run (also the `params` of a `train` job)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    arch: str = Field("centernet-s", description="Architecture name (see jobs.train.models.ARCHS).")
    epochs: int = Field(10, ge=1, le=10000, description="Passes over the training split.")
    batch: int = Field(32, ge=1, le=4096, description="Images (or crops) per step and per process.")
    lr: float = Field(3e-3, gt=0, le=1, description="Peak AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, le=1, description="AdamW weight decay (conv/linear weights only).")
    input_size: tuple[_Side, _Side] | None = Field(None, description="Model input (width, height) in pixels; default per arch.")
    val_fraction: float = Field(0.1, ge=0, lt=1, description="Share of images held out for validation.")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seeds the split, init, data order and augmentation.")
    augment: bool = Field(True, description="Flip, scale/shift and colour jitter.")
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    channels_last: bool = Field(True, description="channels-last memory format on CUDA (ignored on CPU).")
    deterministic: bool = Field(True, description="Deterministic CUDA kernels, for exact resume on GPUs.")
    eval_every: int = Field(1, ge=1, description="Evaluate every N epochs (and after the last).")
    checkpoint_every_steps: int = Field(0, ge=0, description="Also checkpoint every N steps inside an epoch (0: only at epoch ends).")
    world_size: int = Field(1, ge=1, le=64, description="DDP processes (one per device).")
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads per process.")
    half_weights: bool = Field(False, description="Store the delivered weights in fp16.")
    max_cache_mb: int = Field(8192, ge=1, description="Largest in-RAM image cache.")
    device: str = Field("cpu", description="cpu, cuda or cuda:N (set by the job runtime).")

    def guard_hash(self, shards: list[dict]) -> str:
        d = {k: v for k, v in self.model_dump().items() if k not in _NO_EFFECT}
        d["device_type"] = torch.device(self.device).type
        d["shards"] = [s["annotations_sha256"] for s in shards]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


@dataclass
class Hooks:
    """How the loop reports and learns it should stop; safe to call from the training thread."""

    progress: Callable[[float, str | None], None] = lambda f, m=None: None
    log: Callable[..., None] = lambda msg, level="info": None
    should_stop: Callable[[], bool] = lambda: False
    # asked after each epoch: True ends training there and delivers the model as it is (a time
    # budget for demos; not exactly reproducible, so jobs never set it). One process only.
    finish_early: Callable[[], bool] = lambda: False


@dataclass
class _Run:
    cfg: TrainConfig
    task: Literal["detect", "classify"]
    data: CocoSet
    train_cache: object
    val_cache: object
    n_train_images: int
    n_val_images: int
    decode_s: float
    extra: dict = field(default_factory=dict)


def _lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    warm = max(1, min(100, total // 10))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


def prepare(datasets: list[Path], cfg: TrainConfig, hooks: Hooks) -> _Run:
    """Read the datasets, split them and fill the RAM caches (timed)."""
    spec = get_arch(cfg.arch)
    size = tuple(cfg.input_size or spec.default_input)
    data = load_coco(datasets)
    tr, va = split_indices(len(data.samples), cfg.val_fraction, cfg.seed)
    t0 = time.perf_counter()
    threads = max(1, torch.get_num_threads())
    if spec.task == "detect":
        train_cache = build_det_cache([data.samples[i] for i in tr], size, threads, cfg.max_cache_mb)
        val_cache = build_det_cache([data.samples[i] for i in va], size, threads, cfg.max_cache_mb) if len(va) else None
    else:
        train_cache = build_cls_cache([data.samples[i] for i in tr], size, threads)
        val_cache = build_cls_cache([data.samples[i] for i in va], size, threads) if len(va) else None
    decode_s = time.perf_counter() - t0
    hooks.log(f"decoded {len(data.samples)} images into the RAM cache in {decode_s:.1f} s "
              f"({len(train_cache)} training {'images' if spec.task == 'detect' else 'crops'})")
    return _Run(cfg, spec.task, data, train_cache, val_cache, len(tr), len(va), decode_s)


def _evaluate(run: _Run, model, device: str, channels_last: bool) -> dict:
    if run.val_cache is None:
        return {}
    if run.task == "detect":
        return evaluate_detector(model, run.val_cache, run.data.classes, device, channels_last)
    return evaluate_classifier(model, run.val_cache, run.data.classes, device)


def train(datasets: list[Path], cfg: TrainConfig, out_dir: Path, ckpt_path: Path, hooks: Hooks | None = None,
          rank: int = 0, world: int = 1, run: _Run | None = None, init_weights: Path | None = None) -> dict:
    """Train (or resume from `ckpt_path`), write weights, card and curves to `out_dir` (rank 0).
    `init_weights`: start from these weights (a safetensors file of the same arch, classes
    and input size: fine-tuning) instead of a fresh initialisation.

    Returns a summary dict; `summary["stopped"]` is True when `hooks.should_stop()` ended the
    run early (a checkpoint was written and the run can be resumed).
    """
    hooks = hooks or Hooks()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = torch.device(cfg.device)
    cuda = dev.type == "cuda"
    if cuda and cfg.deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    run = run or prepare(datasets, cfg, hooks)
    spec = get_arch(cfg.arch)
    size = tuple(cfg.input_size or spec.default_input)
    guard = cfg.guard_hash(run.data.shards)
    _seed_all(cfg.seed)
    model = build_model(cfg.arch, len(run.data.classes), size).to(dev)
    if init_weights is not None and not ckpt_path.is_file():
        load_weights(Path(init_weights), model)  # TrainError (one line) when it does not fit
        hooks.log(f"fine-tuning from {Path(init_weights).name}")
    channels_last = cuda and cfg.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    use_amp = cuda and cfg.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[dev.index] if cuda else None)

    n = len(run.train_cache)
    if cuda:
        _cache_to_gpu(run.train_cache, dev, hooks)
    batch = min(cfg.batch, n // world)
    if batch < 1:
        raise TrainError(f"{n} training items are too few for {world} processes")
    spe = steps_per_epoch(n, batch, world)
    total = spe * cfg.epochs
    state = {"guard": guard, "epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "seen": 0,
             "train_s": 0.0, "curves": [], "best": None}
    if ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, model, opt, scaler)
        if state.get("guard") != guard:
            raise TrainError(f"checkpoint {ckpt_path} belongs to a different configuration or dataset; "
                             "delete it or train into another folder")
        hooks.log(f"resuming from epoch {state['epoch'] + 1}, step {state['step_in_epoch']} ({ckpt_path.name})")

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, model, opt, state, scaler)
        if world > 1:
            torch.distributed.barrier()

    def stop_now() -> bool:
        flag = hooks.should_stop()
        if world > 1:
            t = torch.tensor([1.0 if flag else 0.0], device=dev)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    model.train()
    stopped = False
    while state["epoch"] < cfg.epochs and not stopped:
        epoch = state["epoch"]
        if state["step_in_epoch"] == 0:
            torch.manual_seed((cfg.seed * 1_000_033 + epoch * 97 + rank) % (2**63))
        order = epoch_order(n, cfg.seed, epoch)
        t_epoch = time.perf_counter()
        loss_acc = torch.zeros((), device=dev)
        while state["step_in_epoch"] < spe:
            step = state["step_in_epoch"]
            idx = batch_indices(order, step, batch, world, rank).to(run.train_cache.images.device)
            g = step_generator(cfg.seed, epoch, step, rank)
            for grp in opt.param_groups:
                grp["lr"] = _lr_at(cfg, state["global_step"], total)
            x = run.train_cache.images[idx].to(dev, non_blocking=True)  # uint8
            if run.task == "detect":
                bx = run.train_cache.boxes[idx].to(dev)
                lab = run.train_cache.labels[idx].to(dev)
                if cfg.augment:
                    x, bx, lab = augment_detection(x, bx, lab, g)
                target = (bx, lab)
            else:
                if cfg.augment:
                    x = augment_classification(x, g)
                target = (run.train_cache.labels[idx].to(dev),)
            x = x.float()
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                loss, _parts = ddp_model(x, *target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss_acc += loss.detach()
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            state["seen"] += batch * world
            if rank == 0:
                hooks.progress(state["global_step"] / max(1, total), f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{spe}")
            every = cfg.checkpoint_every_steps
            want_stop = stop_now()
            if want_stop or (every and state["global_step"] % every == 0 and state["step_in_epoch"] < spe):
                state["loss_sum"] += float(loss_acc)
                loss_acc.zero_()
                state["train_s"] += time.perf_counter() - t_epoch
                t_epoch = time.perf_counter()
                checkpoint()
                if want_stop:
                    stopped = True
                    hooks.log(f"stopped at epoch {epoch + 1} step {state['step_in_epoch']}; checkpoint saved", "warning")
                    break
        if stopped:
            break
        state["loss_sum"] += float(loss_acc)
        state["train_s"] += time.perf_counter() - t_epoch
        row = {"epoch": epoch + 1, "train_loss": state["loss_sum"] / max(1, spe), "lr": opt.param_groups[0]["lr"],
               "train_s": round(state["train_s"], 3)}
        if rank == 0 and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            row.update({k: v for k, v in _evaluate(run, model, str(dev), channels_last).items()
                        if k in ("map50", "map", "accuracy")})
        if world > 1:
            torch.distributed.barrier()
        state["curves"].append(row)
        hooks.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        state.update(epoch=epoch + 1, step_in_epoch=0, loss_sum=0.0)
        checkpoint()
        if world == 1 and state["epoch"] < cfg.epochs and hooks.finish_early():
            hooks.log(f"finishing early after epoch {state['epoch']} of {cfg.epochs} (time budget)", "warning")
            break

    summary = {"stopped": stopped, "epoch": state["epoch"], "global_step": state["global_step"],
               "train_s": round(state["train_s"], 3), "images_per_s": round(state["seen"] / max(1e-9, state["train_s"]), 2)}
    if stopped or rank != 0:
        return summary
    metrics = _evaluate(run, model, str(dev), channels_last)
    out_dir.mkdir(parents=True, exist_ok=True)
    wmeta = {"arch": cfg.arch, "classes": run.data.classes, "input_size": list(size)}
    domain_line, domain_stats = training_domain(run.data.shards)
    data = save_weights(out_dir / WEIGHTS_NAME, model, wmeta, half=cfg.half_weights)
    card = {
        "format": CARD_FORMAT,
        "task": run.task,
        "arch": cfg.arch,
        "classes": run.data.classes,
        "input_size": list(size),
        "num_params": count_params(model),
        "weights": {"file": WEIGHTS_NAME, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                    "dtype": "float16" if cfg.half_weights else "float32"},
        "metric": "map50" if run.task == "detect" else "accuracy",
        "metrics": metrics,
        "datasets": [{**sh, "path": Path(sh["path"]).name} for sh in run.data.shards],  # no local paths in a card
        "training_domain": domain_line,
        "evaluation_sets": [{"name": "validation split", "images": run.n_val_images, "what": f"held-back frames of the training renders ({domain_line})",
                             "metric": "map50" if run.task == "detect" else "accuracy",
                             "value": metrics.get("map50" if run.task == "detect" else "accuracy")}],
        "domain_stats": domain_stats,
        "split": {"seed": cfg.seed, "val_fraction": cfg.val_fraction, "train_images": run.n_train_images,
                  "val_images": run.n_val_images},
        "training": {"epochs": state["epoch"], "planned_epochs": cfg.epochs, "batch": batch, "world_size": world, "lr": cfg.lr, "augment": cfg.augment,
                     "steps": state["global_step"], "train_s": round(state["train_s"], 2),
                     "images_per_s": summary["images_per_s"], "decode_s": round(run.decode_s, 2),
                     "device": _device_name(dev), "amp": use_amp, "threads": torch.get_num_threads()},
        "software": software_versions(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(out_dir / CARD_NAME, card)
    atomic_write_json(out_dir / "curves.json", state["curves"])
    plot_curves(state["curves"], out_dir / "curves.png", f"{cfg.arch} on {sum(s['images'] for s in run.data.shards)} images")
    summary.update(metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))}, card=CARD_NAME)
    return summary


def _cache_to_gpu(cache, dev: torch.device, hooks: Hooks) -> None:
    """Keep the uint8 training cache in GPU memory when it takes under 30% of it: batches are
    then gathered on the GPU and nothing crosses the (possibly x1) PCIe link per step."""
    if cache.images.device == dev:
        return
    size = cache.images.numel() + getattr(cache, "boxes", cache.labels).numel() * 4
    total = torch.cuda.get_device_properties(dev).total_memory
    if size < 0.3 * total:
        cache.images = cache.images.to(dev)
        cache.labels = cache.labels.to(dev)
        if hasattr(cache, "boxes"):
            cache.boxes = cache.boxes.to(dev)
        hooks.log(f"training cache ({size / 2**20:.0f} MB) moved to {dev}")


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
