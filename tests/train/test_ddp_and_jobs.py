"""DDP with two gloo processes on the CPU, and the engines as the job runtime runs them
(a real `kminer job run` worker for `train`; JobContext calls for infer and verify-train)."""

from __future__ import annotations

import json
import threading

import pytest

from jobs.engine import ENGINES, EngineError, JobContext, resolve_engine


def _ctx(tmp_path, kind, params, inputs, seed=0):
    out, work = tmp_path / f"{kind}-out", tmp_path / f"{kind}-work"
    out.mkdir()
    work.mkdir()
    logs: list[dict] = []
    return JobContext(job_id=f"t-{kind}", kind=kind, params=params, inputs=inputs, out_dir=out, work_dir=work,
                      device="cpu", seed=seed, _emit=logs.append), logs


def test_ddp_two_gloo_processes_train_like_one(tmp_path, shapes):
    from jobs.train.card import load_card
    from jobs.train.engines import run_training
    from jobs.train.trainer import Hooks, TrainConfig

    cfg = TrainConfig(arch="centernet-xs", epochs=10, batch=8, lr=1e-2, threads=1, seed=3, world_size=2,
                      val_fraction=0.25)
    progress: list[float] = []
    s = run_training([shapes], cfg, tmp_path / "m", tmp_path / "m" / "ck.safetensors", tmp_path / "scratch",
                     Hooks(progress=lambda f, m=None: progress.append(f)))
    assert s["world_size"] == 2 and not s["stopped"]
    assert s["metrics"]["map50"] >= 0.5, s  # the single-process fixture with the same global batch reaches ~0.85
    card, _ = load_card(tmp_path / "m")
    assert card["training"]["world_size"] == 2 and card["training"]["batch"] == 8
    assert progress and progress[-1] == pytest.approx(1.0)
    assert not list((tmp_path / "scratch").glob("ddp-rendezvous-*"))


def test_engines_are_registered():
    assert {"train", "infer", "verify-train"} <= set(ENGINES)
    for k in ("train", "infer", "verify-train"):
        assert callable(resolve_engine(k))


def test_train_job_through_the_real_worker(tmp_path, kminer):
    from jobs.artifacts import tree_sha256, write_tree_tar
    from jobs.train.synthetic import make_shapes_dataset

    ds = make_shapes_dataset(tmp_path / "ds", n_images=40, seed=2)
    with open(tmp_path / "ds.tar", "wb") as f:  # a folder input travels as its deterministic archive
        write_tree_tar(ds, f)
    spec = {"id": "train-shapes", "kind": "train", "seed": 4,
            "params": {"arch": "centernet-xs", "epochs": 2, "batch": 8, "threads": 1},
            "inputs": {"shapes": {"sha256": tree_sha256(ds), "uri": "ds.tar", "type": "dir"}},
            "resources": {"device": "cpu", "max_wall_s": 300, "max_ram_mb": 3000, "max_disk_mb": 64}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    r = kminer("job", "run", str(tmp_path / "spec.json"), "--sandbox", "basic", "--json")
    assert r.returncode == 0, r.stderr + r.stdout
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded", doc
    assert doc["result"]["epoch"] == 2 and "map50" in doc["result"]["metrics"]


def test_train_job_stops_on_cancel_and_resumes(tmp_path, shapes):
    from jobs.train.engines import train

    ctx, logs = _ctx(tmp_path, "train", {"arch": "centernet-xs", "epochs": 2, "batch": 16, "threads": 1}, {"d": shapes})
    ctx._cancel.set()
    s = train(ctx)
    assert s["stopped"] and s["global_step"] == 1
    assert (ctx.work_dir / "checkpoint.safetensors").is_file() and not (ctx.out_dir / "model.safetensors").exists()
    ctx._cancel = threading.Event()
    s = train(ctx)
    assert not s["stopped"] and s["epoch"] == 2
    assert any("resuming from epoch 1, step 1" in m.get("message", "") for m in logs)
    assert (ctx.out_dir / "model_card.json").is_file()


def test_infer_and_verify_jobs(tmp_path, trained, shapes_holdout):
    from jobs.train.engines import infer, verify

    model_dir, _ = trained
    ctx, _ = _ctx(tmp_path, "infer", {"score_threshold": 0.2}, {"model": model_dir, "photos": shapes_holdout / "images"})
    res = infer(ctx)
    assert res["images"] == 80 and res["detections"] > 40
    assert len(json.loads((ctx.out_dir / "results.json").read_text())["results"]) == 80
    ctx, logs = _ctx(tmp_path, "verify-train", {"tolerance": 0.1}, {"model": model_dir, "held-out": shapes_holdout})
    assert verify(ctx)["passed"]
    (tmp_path / "x").mkdir()
    ctx, _ = _ctx(tmp_path / "x", "infer", {"bogus": 1}, {"model": model_dir})
    with pytest.raises(EngineError, match="params.bogus"):
        infer(ctx)
