"""kill -9 (and SIGTERM) mid-training, then resume: the same final weights as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from jobs.train.synthetic import make_shapes_dataset

ARGS = ["--arch", "centernet-xs", "--epochs", "3", "--batch", "8", "--threads", "1", "--seed", "5",
        "--checkpoint-every", "2", "--val-fraction", "0.2"]


def _start(ds, out):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen([sys.executable, "-m", "cli", "train", str(ds), "--out", str(out), *ARGS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(proc, ckpt, after_mtime=0.0, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if ckpt.exists() and ckpt.stat().st_mtime > after_mtime:
            return
        if proc.poll() is not None:
            pytest.fail(f"training ended before a checkpoint was seen: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def test_kill_9_then_resume_gives_identical_weights(tmp_path):
    ds = make_shapes_dataset(tmp_path / "ds", n_images=50, seed=4)
    ref = _start(ds, tmp_path / "ref")
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err

    run = tmp_path / "run"
    ckpt = run / "checkpoint.safetensors"
    p = _start(ds, run)
    _wait_for_checkpoint(p, ckpt)
    os.kill(p.pid, signal.SIGKILL)  # our own child, by pid
    p.wait()
    assert not (run / "model.safetensors").exists(), "killed too late to test anything"

    # resume, then stop it politely with SIGTERM (checkpoint on cancel) ...
    p = _start(ds, run)
    _wait_for_checkpoint(p, ckpt, after_mtime=ckpt.stat().st_mtime)
    os.kill(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode in (0, 3), err
    # ... and run to the end
    p = _start(ds, run)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert "resuming from epoch" in err

    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), k
    assert (tmp_path / "ref" / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
