"""Multi-device training: torch.distributed DDP, one spawned process per device.

The calling process (the job's worker) spawns `world_size` ranks, relays their progress and
log lines (rank 0's) from a queue to its hooks, and forwards a stop request to all ranks
through an Event; the ranks agree on the step to stop at with an all-reduce. Rendezvous is a
file in a scratch folder (no network needed, works in a network-less sandbox). CUDA ranks
use NCCL and device `cuda:rank`; CPU ranks use gloo and split the CPU threads between them.
"""

from __future__ import annotations

import os
import queue
import signal
import time
from pathlib import Path

import torch

from jobs.train import TrainError
from jobs.train.trainer import Hooks, TrainConfig, train


def _rank_main(rank: int, world: int, cfg_d: dict, datasets: list[str], out_dir: str, ckpt: str, init_file: str,
               q, stop) -> None:
    import torch.distributed as dist

    term = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: term.__setitem__("flag", True))
    signal.signal(signal.SIGINT, lambda *_: term.__setitem__("flag", True))
    cfg = TrainConfig(**cfg_d)
    cuda = cfg.device.startswith("cuda")
    threads = cfg.threads or max(1, (os.cpu_count() or 1) // world)
    cfg = cfg.model_copy(update={"device": f"cuda:{rank}" if cuda else "cpu", "threads": threads})
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    hooks = Hooks(progress=lambda f, m=None: q.put(("progress", f, m)),
                  log=(lambda m, level="info": q.put(("log", m, level))) if rank == 0 else (lambda m, level="info": None),
                  should_stop=lambda: term["flag"] or stop.is_set())
    try:
        s = train([Path(d) for d in datasets], cfg, Path(out_dir), Path(ckpt), hooks, rank=rank, world=world)
        q.put(("result", rank, s))
    except TrainError as e:
        q.put(("error", rank, str(e)))
        raise SystemExit(1)
    finally:
        dist.destroy_process_group()


def train_ddp(datasets: list[Path], cfg: TrainConfig, out_dir: Path, ckpt_path: Path, scratch: Path,
              hooks: Hooks | None = None) -> dict:
    """Train with `cfg.world_size` processes; returns rank 0's summary."""
    hooks = hooks or Hooks()
    world = cfg.world_size
    if cfg.device.startswith("cuda") and torch.cuda.device_count() < world:
        raise TrainError(f"DDP over {world} GPUs asked, {torch.cuda.device_count()} visible")
    mp = torch.multiprocessing.get_context("spawn")
    q = mp.Queue()
    stop = mp.Event()
    scratch.mkdir(parents=True, exist_ok=True)
    init_file = scratch / f"ddp-rendezvous-{os.getpid()}-{time.time_ns()}"
    procs = [mp.Process(target=_rank_main, args=(r, world, cfg.model_dump(), [str(d) for d in datasets], str(out_dir),
                                                  str(ckpt_path), str(init_file), q, stop), daemon=False)
             for r in range(world)]
    for p in procs:
        p.start()
    results: dict[int, dict] = {}
    errors: list[str] = []

    def handle(msg: tuple) -> None:
        if msg[0] == "progress":
            hooks.progress(msg[1], msg[2])
        elif msg[0] == "log":
            hooks.log(msg[1], msg[2])
        elif msg[0] == "result":
            results[msg[1]] = msg[2]
        elif msg[0] == "error":
            errors.append(f"rank {msg[1]}: {msg[2]}")

    try:
        while any(p.is_alive() for p in procs):
            if hooks.should_stop():
                stop.set()
            try:
                handle(q.get(timeout=0.2))
            except queue.Empty:
                pass
            if any(p.exitcode not in (None, 0) for p in procs):
                time.sleep(2)  # a dead rank leaves the others waiting in a collective
                for p in procs:
                    if p.is_alive():
                        p.kill()
                break
        for p in procs:
            p.join()
        while True:  # what the ranks said last
            try:
                handle(q.get(timeout=0.5))
            except queue.Empty:
                break
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        init_file.unlink(missing_ok=True)
    if errors:
        raise TrainError(errors[0])
    bad = [f"rank {r} exit code {p.exitcode}" for r, p in enumerate(procs) if p.exitcode != 0]
    if bad or 0 not in results:
        raise TrainError("DDP training failed: " + (", ".join(bad) or "rank 0 reported no result"))
    return {**results[0], "world_size": world}
