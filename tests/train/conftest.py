"""Fixtures for the train/infer tests: real COCO datasets of drawn shapes (exact labels, made
at test time) and a tiny detector trained on them once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shapes(tmp_path_factory) -> Path:
    from jobs.train.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("shapes") / "ds", n_images=160, seed=1)


@pytest.fixture(scope="session")
def shapes_holdout(tmp_path_factory) -> Path:
    """Same kind of scenes from another seed: the buyer's held-out set."""
    from jobs.train.synthetic import make_shapes_dataset

    return make_shapes_dataset(tmp_path_factory.mktemp("holdout") / "ds", n_images=80, seed=99)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, shapes) -> tuple[Path, dict]:
    """A centernet-xs trained in-process on `shapes` (one thread, ~10 s); (model dir, summary)."""
    import torch

    from jobs.train.trainer import TrainConfig, train

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(arch="centernet-xs", epochs=10, batch=16, lr=1e-2, threads=1, seed=3, val_fraction=0.25)
    summary = train([shapes], cfg, out, out / "checkpoint.safetensors")
    return out, summary


def _kminer(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def kminer():
    """Run the real CLI in a child process: kminer("train", ...) -> CompletedProcess."""
    return _kminer
