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


class JobsService:
    """The job queue as the GUI shows it: plain dicts, thread-safe (the queue locks itself).

    Calls are blocking SQLite reads/writes: run them off the GUI thread.
    """

    def __init__(self, ctx: AppContext):
        self._queue = open_queue(ctx)

    def jobs(self, limit: int = 500) -> list[dict]:
        """Newest first: id, kind, state, attempts, reason, device_id, created_at, updated_at..."""
        rows = [j.as_dict() for j in self._queue.list(limit=limit)]
        return sorted(rows, key=lambda r: r["updated_at"], reverse=True)

    def attempts(self, job_id: str) -> list[dict]:
        return [a.as_dict() for a in self._queue.attempts(job_id)]

    def cancel(self, job_id: str) -> str:
        """Cancel a queued job at once, or flag a running one; returns its state after the call."""
        return self._queue.request_cancel(job_id)

    def close(self) -> None:
        self._queue.close()
