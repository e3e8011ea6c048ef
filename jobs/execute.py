"""One attempt of a queued job, end to end: open the attempt in the queue, build the job
folder (spec + verified inputs), run the sandboxed worker, store the outputs in the
artifact store, record the outcome.

`execute_attempt` blocks; call it from the thread that owns the job (see runner.JobRun).
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.device_id import DeviceId
from jobs.artifacts import ArtifactError, ArtifactStore
from jobs.limits import limits_for
from jobs.queue import APP_STOPPED, JobQueue, JobRecord
from jobs.runner import JobRun, Outcome
from jobs.sandbox import Level, SandboxUnavailable, find_bwrap

log = logging.getLogger(__name__)
CANCEL_POLL_S = 0.1


@dataclass(frozen=True)
class Device:
    """A device as the scheduler sees it (filled in by the app from gpu/; plain data here).

    `active`: the miner lets it work now (mode `mining`, or `auto` and the user away).
    `throttled`: over its temperature/power limit; its job is paused until it cools.
    """

    device_id: str                  # the device's stable key (common.device_id.DeviceId.key)
    kind: str = "cpu"               # "cpu" or "gpu"
    memory_mb: int = 0
    active: bool = True
    throttled: bool = False
    index: int | None = None        # NVIDIA device index (/dev/nvidiaN) for GPUs
    pci_bus_id: str | None = None
    slots: int = 1                  # jobs at once (GPU: 1; CPU: the cpu_slots setting)

    @classmethod
    def of(cls, ident: DeviceId, **state: Any) -> "Device":
        """The scheduler's view of device `ident` (its key, kind and NVML index) with `state`
        (memory_mb, active, throttled, slots)."""
        return cls(ident.key, ident.kind, index=ident.nvml_index, **state)


@dataclass
class RuntimeConfig:
    jobs_dir: Path
    store: ArtifactStore
    level: Level
    allow_code_jobs_basic: bool = False
    max_output_mb: int = 4096
    hide: list[Path] = field(default_factory=list)   # folders a strict job must never see (app data, home)
    use_cgroups: bool = True                         # False: rely on the watchdogs alone
    nice: int = 10                                   # CPU priority below normal (0..19; Windows: below normal if > 0)


def device_fits(spec_resources, dev: Device) -> bool:
    need = spec_resources.device
    if need == "cpu" and dev.kind != "cpu":
        return False
    if need == "gpu" and dev.kind != "gpu":
        return False
    if dev.kind == "gpu" and spec_resources.min_gpu_memory_mb > dev.memory_mb:
        return False
    return True


def prepare_job_dir(cfg: RuntimeConfig, job: JobRecord, n: int) -> Path:
    """`jobs_dir/<id>/attempt-<n>/` with spec.json and each input verified under in/."""
    d = cfg.jobs_dir / job.id / f"attempt-{n}"
    if d.exists():
        shutil.rmtree(d)
    (d / "in").mkdir(parents=True)
    (d / "spec.json").write_text(job.spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
    base = Path(job.spec_dir) if job.spec_dir else None
    for name, ref in job.spec.inputs.items():
        try:
            cfg.store.materialize(ref.sha256, d / "in" / name, kind=ref.type, uri=ref.uri, base_dir=base)
        except ArtifactError as e:
            raise ArtifactError(f"input {name!r}: {e}") from None
    return d


class Attempt:
    """A handle on a running attempt, for pause/resume/cancel from other threads."""

    def __init__(self) -> None:
        self.run: JobRun | None = None
        self.ready = threading.Event()

    def pause(self) -> None:
        if self.run is not None:
            self.run.pause()

    def resume(self) -> None:
        if self.run is not None:
            self.run.resume()

    def cancel(self, reason: str = "cancelled by request") -> None:
        self.ready.wait(5)
        if self.run is not None:
            self.run.cancel(reason)


def execute_attempt(queue: JobQueue, cfg: RuntimeConfig, job_id: str, dev: Device, *,
                    on_event: Callable[[dict[str, Any]], None] | None = None,
                    handle: Attempt | None = None) -> Outcome | None:
    """Run the queued job `job_id` once on `dev`. Returns None if it was not queued."""
    handle = handle or Attempt()
    job = queue.get(job_id)
    n = queue.start_attempt(job_id, device_id=dev.device_id, sandbox=cfg.level, job_dir=cfg.jobs_dir / job_id)
    if n is None:
        handle.ready.set()
        return None
    job_dir = cfg.jobs_dir / job_id / f"attempt-{n}"
    with queue._tx() as c:   # the attempt's real folder, so recovery deletes exactly it
        c.execute("UPDATE attempts SET job_dir=? WHERE job_id=? AND n=?", (str(job_dir), job_id, n))

    def fail(reason: str) -> Outcome:
        handle.ready.set()
        queue.finish_attempt(job_id, n, status="failed", reason=reason)
        return Outcome(status="failed", reason=reason, level=cfg.level)

    if job.spec.carries_code and cfg.level != "strict" and not cfg.allow_code_jobs_basic:
        return fail(f"{job.spec.kind} jobs carry buyer code and run only under the strict sandbox "
                    "(install bubblewrap, or allow code jobs under basic in the settings)")
    if cfg.level == "strict" and find_bwrap() is None:
        return fail("strict sandbox unavailable: bubblewrap is not installed")
    try:
        job_dir = prepare_job_dir(cfg, job, n)
    except (ArtifactError, OSError) as e:
        return fail(str(e))
    limits = limits_for(job.spec.resources, device_is_gpu=dev.kind == "gpu", max_output_mb=cfg.max_output_mb)

    def on_start(pid: int) -> None:
        try:
            import psutil

            started = psutil.Process(pid).create_time()
        except Exception:
            started = None
        queue.set_pid(job_id, n, pid, started)

    run = JobRun(job_dir, job_id, limits, level=cfg.level, device_index=dev.index if dev.kind == "gpu" else None,
                 pci_bus_id=dev.pci_bus_id, hide=list(cfg.hide), on_event=on_event, on_start=on_start,
                 use_cgroups=cfg.use_cgroups, nice=cfg.nice)
    handle.run = run
    handle.ready.set()
    stop = threading.Event()

    def watch_cancel() -> None:   # `kminer job cancel` from another process sets a flag in the queue
        while not stop.wait(CANCEL_POLL_S):
            try:
                if queue.cancel_requested(job_id):
                    run.cancel("cancelled by request")
                    return
            except Exception:
                log.exception("cancel watch for %s", job_id)
                return

    watcher = threading.Thread(target=watch_cancel, name=f"cancel-watch-{job_id}", daemon=True)
    watcher.start()
    try:
        out = run.run()
    except SandboxUnavailable as e:
        stop.set()
        return fail(str(e))
    finally:
        stop.set()
    output_sha = None
    if out.status == "succeeded":
        try:
            output_sha = cfg.store.put_dir(job_dir / "out")
        except (ArtifactError, OSError) as e:
            out.status, out.reason, out.result = "failed", f"could not store the outputs: {e}", None
    if out.status == "cancelled" and out.reason == APP_STOPPED:
        queue.requeue_attempt(job_id, n, APP_STOPPED)   # the app is closing: the job runs again next time
        shutil.rmtree(job_dir, ignore_errors=True)
        return out
    queue.finish_attempt(job_id, n, status=out.status, reason=out.reason, result=out.result, output_sha=output_sha,
                         first_progress_s=out.start_to_first_progress_s)
    for sub in ("in", "work", "out"):
        shutil.rmtree(job_dir / sub, ignore_errors=True)
    (job_dir / "outcome.json").write_text(json.dumps(out.as_dict(), default=str, indent=2) + "\n")
    out_dict_sha = output_sha
    if out_dict_sha:
        out.result = dict(out.result or {}, output_sha256=out_dict_sha)
    return out
