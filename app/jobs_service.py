"""App-level wiring of the job runtime: builds the queue, artifact store and runtime
config from the app's paths and settings. Used by `kminer job ...` and by MinerService."""

from __future__ import annotations

from pathlib import Path

from app.context import AppContext
from jobs.artifacts import ArtifactStore
from jobs.execute import Device, RuntimeConfig
from jobs.queue import JobQueue
from jobs.sandbox import resolve_level


def open_queue(ctx: AppContext) -> JobQueue:
    return JobQueue(ctx.paths.jobs_db)


def runtime_config(ctx: AppContext, *, sandbox: str | None = None) -> RuntimeConfig:
    """The runtime as the settings say (`sandbox` overrides the level for one run)."""
    s = ctx.settings.jobs
    level = resolve_level(sandbox or s.sandbox)
    p = ctx.paths
    hide = [p.data_dir, p.config_dir, p.log_dir, p.cache_dir, Path.home()]
    return RuntimeConfig(jobs_dir=p.jobs_dir, store=ArtifactStore(p.artifacts_dir), level=level,
                         allow_code_jobs_basic=s.allow_code_jobs_basic, max_output_mb=s.max_output_mb, hide=hide)


def parse_device(text: str, *, cpu_slots: int = 1) -> Device:
    """`cpu`, or a GPU as `gpu:N` / `cuda:N` / `N` (N = NVIDIA device index)."""
    t = text.strip().lower()
    if t == "cpu":
        return Device("cpu", "cpu", slots=cpu_slots)
    for prefix in ("gpu:", "cuda:", ""):
        if t.startswith(prefix) and t[len(prefix):].isdigit():
            i = int(t[len(prefix):])
            return Device(f"gpu:{i}", "gpu", memory_mb=1 << 30, index=i)
    raise ValueError(f"unknown device {text!r}: use cpu or gpu:N")
