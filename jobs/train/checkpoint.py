"""Checkpoints and weights without pickles: one safetensors file each, JSON in its metadata.

A checkpoint holds the model, the optimizer's tensors, the GradScaler, the schedule position
and the RNG states (torch, CUDA, numpy, python), plus the loop position (epoch, step) and the
curves so far, all in ONE file written atomically, so a kill at any moment leaves either the
previous checkpoint or the new one. Loading never runs code from the file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from common.fsutil import atomic_write_bytes
from jobs.train import TrainError

FORMAT = "kminer-checkpoint/1"
WEIGHTS_FORMAT = "kminer-weights/1"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                    scaler: torch.amp.GradScaler | None = None) -> None:
    """Write model + optimizer + RNG + `state` (JSON-able: epoch, step, curves...) atomically."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    opt_meta: dict[str, dict] = {}
    for idx, st in opt["state"].items():
        opt_meta[str(idx)] = {}
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"opt.{idx}.{name}"] = _cpu(v)
            else:
                opt_meta[str(idx)][name] = v
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_state = random.getstate()
    meta = {
        "format": FORMAT,
        "state": state,
        "optimizer": {"param_groups": opt["param_groups"], "scalars": opt_meta},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "rng": {"numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
                "python": [py_state[0], list(py_state[1]), py_state[2]]},
    }
    atomic_write_bytes(path, st_save(tensors, metadata={"kminer": json.dumps(meta)}))


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None = None) -> dict:
    """Restore everything `save_checkpoint` wrote; returns its `state`. RNGs are restored too."""
    try:
        raw = path.read_bytes()
        tensors = st_load(raw)
        from safetensors import safe_open  # metadata lives in the header

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["kminer"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise TrainError(f"checkpoint {path} is unreadable ({e}); delete it to start over") from None
    if meta.get("format") != FORMAT:
        raise TrainError(f"checkpoint {path} has an unknown format {meta.get('format')!r}")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict] = {}
    for idx, scalars in meta["optimizer"]["scalars"].items():
        opt_state[int(idx)] = dict(scalars)
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["optimizer"]["param_groups"]})
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = meta["rng"]["numpy"]
    np.random.set_state((n[0], tensors["rng.numpy"].numpy().astype(np.uint32), n[1], n[2], n[3]))
    p = meta["rng"]["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    return meta["state"]


def save_weights(path: Path, model: torch.nn.Module, meta: dict, half: bool = False) -> bytes:
    """Write the model's state dict (fp16 floats when `half`) with deterministic metadata;
    returns the bytes written (their sha256 goes in the card)."""
    tensors = {}
    for k, v in model.state_dict().items():
        v = _cpu(v)
        if half and v.is_floating_point():
            v = v.half()
        tensors[k] = v
    # one metadata key: safetensors keeps metadata in a hash map, so several keys would come
    # out in a random order and the same weights would not give the same bytes
    data = st_save(tensors, metadata={"kminer": json.dumps({"format": WEIGHTS_FORMAT, **meta}, sort_keys=True)})
    atomic_write_bytes(path, data)
    return data


def load_weights(path: Path, model: torch.nn.Module) -> None:
    """Load weights into `model`; TrainError (clear, one line) when the file is corrupt or
    does not fit the architecture."""
    try:
        tensors = st_load(path.read_bytes())
    except (SafetensorError, OSError, ValueError) as e:
        raise TrainError(f"weights file {path.name} is corrupt or not safetensors ({e})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise TrainError(f"weights file {path.name} does not match the model: "
                         f"{len(missing)} tensors missing (e.g. {missing[:1]}), {len(extra)} unexpected (e.g. {extra[:1]})")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise TrainError(f"weights file {path.name} does not match the model: {k} has shape "
                             f"{tuple(v.shape)}, the model needs {tuple(own[k].shape)}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})
