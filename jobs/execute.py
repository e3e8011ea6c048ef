"""One attempt of a queued job, end to end: open the attempt in the queue, build the job
folder (spec + verified inputs), run the sandboxed worker, store the outputs in the
artifact store, record the outcome.

Inputs come only by content hash: from the artifact store, or fetched from their URI under
`RuntimeConfig.url_policy` (jobs/url_policy.py; a spec run from the user's own disk may
also name files beside it), capped by the job's own wall-clock limit. After the run the
attempt folder is reached only through a directory fd opened before the job started, and
its outputs only through jobs.safe_fs (no link followed; links, devices, FIFOs, sockets,
hard links refused with the name and reason; files and bytes capped), so nothing the job
left behind can redirect what the app reads, writes or deletes.

`execute_attempt` blocks; call it from the thread that owns the job (see runner.JobRun).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.device_id import DeviceId
from jobs import safe_fs
from jobs.artifacts import ArtifactError, ArtifactStore, OutputTooLarge
from jobs.attempt_files import write_outcome_at
from jobs.level_policy import refusal
from jobs.limits import Limits, limits_for
from jobs.queue import APP_STOPPED, JobQueue, JobRecord
from jobs.runner import JobRun, Outcome
from jobs.sandbox import Level, SandboxUnavailable, strict_problem
from jobs.url_policy import UrlPolicy

log = logging.getLogger(__name__)
CANCEL_POLL_S = 0.1


@dataclass(frozen=True)
class Device:
    """A device as the scheduler sees it (filled in by the app from gpu/; plain data here).

    `active`: the miner lets it work now (mode `mining`, or `auto` and the user away).
    `throttled`: over its temperature/power limit; its job is paused until it cools.
    `accepts_new`: False while it may finish its job but start no other (outside mining hours).
    `capabilities`: what it can run ("render", "train"); an AMD card without ROCm torch only renders.
    """

    device_id: str                  # the device's stable key (common.device_id.DeviceId.key)
    kind: str = "cpu"               # "cpu", "gpu" (NVIDIA) or "amd"
    memory_mb: int = 0
    active: bool = True
    throttled: bool = False
    index: int | None = None        # NVIDIA device index (/dev/nvidiaN) for GPUs
    pci_bus_id: str | None = None
    slots: int = 1                  # jobs at once (GPU: 1; CPU: the cpu_slots setting)
    accepts_new: bool = True
    capabilities: tuple[str, ...] = ("render", "train")

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
    max_output_files: int = 100_000                  # the miner's cap on a job's files and folders
    allow_market_jobs_basic: bool = False            # the miner's explicit choice (settings), see level_policy
    is_market_job: Callable[[str], bool] | None = None   # queue id -> from the market (a stranger's job)
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)   # what input URIs in a spec may name


GPU_KINDS = ("gpu", "amd")


def engine_needs(kind: str) -> str:
    """What a job's engine needs of its device: "render" (OpenGL) or "train" (torch, and any
    other engine: buyer code may use torch)."""
    return "render" if kind in ("render", "verify-render", "sleep") else "train"


def device_fits(spec_resources, dev: Device, kind: str | None = None) -> bool:
    """Whether a job with `spec_resources` (and engine `kind`, when given) can run on `dev`."""
    need = spec_resources.device
    if need == "cpu" and dev.kind != "cpu":
        return False
    if need == "gpu" and dev.kind not in GPU_KINDS:
        return False
    if dev.kind in GPU_KINDS and spec_resources.min_gpu_memory_mb > dev.memory_mb:
        return False
    if kind is not None and engine_needs(kind) not in dev.capabilities:
        return False
    return True


def input_policy(cfg: RuntimeConfig, job: JobRecord, limits: Limits | None = None) -> UrlPolicy:
    """The URL policy for this job's inputs: the configured one, capped by the job's own
    wall-clock limit; files beside the spec only for a spec run from the user's disk."""
    from dataclasses import replace

    p = cfg.url_policy
    if job.spec_dir and not (cfg.is_market_job and cfg.is_market_job(job.id)):
        p = replace(p, allow_local_files=True)
    return p.capped(timeout_s=limits.wall_s if limits else None)


def prepare_job_dir(cfg: RuntimeConfig, job: JobRecord, n: int, limits: Limits | None = None) -> Path:
    """`jobs_dir/<id>/attempt-<n>/` with spec.json and each input verified under in/."""
    d = cfg.jobs_dir / job.id / f"attempt-{n}"
    if d.exists() or d.is_symlink():
        safe_fs.remove_tree(d)
    (d / "in").mkdir(parents=True)
    (d / "spec.json").write_text(job.spec.model_dump_json(indent=2) + "\n", encoding="utf-8")
    base = Path(job.spec_dir) if job.spec_dir else None
    policy = input_policy(cfg, job, limits)
    for name, ref in job.spec.inputs.items():
        try:
            cfg.store.materialize(ref.sha256, d / "in" / name, kind=ref.type, uri=ref.uri, base_dir=base, policy=policy)
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

    def fail(self, reason: str) -> None:
        """Stop the attempt now as failed with `reason` (see JobRun.fail)."""
        self.ready.wait(5)
        if self.run is not None:
            self.run.fail(reason)


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

    why = refusal(cfg.level, market_job=bool(cfg.is_market_job and cfg.is_market_job(job_id)),
                  carries_code=job.spec.carries_code, kind=job.spec.kind,
                  allow_market_jobs_basic=cfg.allow_market_jobs_basic, allow_code_jobs_basic=cfg.allow_code_jobs_basic)
    if why is not None:
        return fail(why)
    if cfg.level == "strict" and (problem := strict_problem()) is not None:
        return fail(f"strict sandbox unavailable: {problem}")
    limits = limits_for(job.spec.resources, device_is_gpu=dev.kind in GPU_KINDS, max_output_mb=cfg.max_output_mb,
                        max_output_files=cfg.max_output_files)
    try:
        job_dir = prepare_job_dir(cfg, job, n, limits)
        attempt_fd = safe_fs.open_dir(job_dir) if safe_fs.HAVE_DIR_FD else None
    except (ArtifactError, OSError) as e:
        return fail(str(e))
    try:
        return _run_and_store(queue, cfg, job_id, n, job_dir, attempt_fd, limits, dev, on_event, handle)
    finally:
        if attempt_fd is not None:
            os.close(attempt_fd)


def _run_and_store(queue: JobQueue, cfg: RuntimeConfig, job_id: str, n: int, job_dir: Path, attempt_fd: int | None,
                   limits: Limits, dev: Device, on_event, handle: Attempt) -> Outcome:
    """Run the prepared attempt, then store, record and clean up through `attempt_fd` (the
    attempt folder as it was before the job started, whatever became of its name)."""

    def on_start(pid: int) -> None:
        try:
            import psutil

            started = psutil.Process(pid).create_time()
        except Exception:
            started = None
        queue.set_pid(job_id, n, pid, started)

    gpu = dev.kind == "gpu"
    run = JobRun(job_dir, job_id, limits, level=cfg.level, device_index=dev.index if gpu else None,
                 pci_bus_id=dev.pci_bus_id, gpu_uuid=dev.device_id if gpu else None, hide=list(cfg.hide),
                 on_event=on_event, on_start=on_start, use_cgroups=cfg.use_cgroups, nice=cfg.nice,
                 amd=dev.kind == "amd")
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
        handle.ready.set()
        queue.finish_attempt(job_id, n, status="failed", reason=str(e))
        return Outcome(status="failed", reason=str(e), level=cfg.level)
    finally:
        stop.set()
    output_sha = None
    if out.status == "succeeded":
        try:
            output_sha = cfg.store.put_dir("out" if attempt_fd is not None else job_dir / "out", dir_fd=attempt_fd,
                                           max_files=limits.output_files, max_bytes=limits.output_bytes,
                                           allow_hardlinks=False)
        except OutputTooLarge as e:
            out.status, out.reason, out.result = "failed", f"output limit reached ({e})", None
        except (ArtifactError, OSError) as e:
            out.status, out.reason, out.result = "failed", f"outputs refused: {e}", None
    if out.status == "cancelled" and out.reason == APP_STOPPED:
        queue.requeue_attempt(job_id, n, APP_STOPPED)   # the app is closing: the job runs again next time
        _remove(job_dir, attempt_fd, (), whole=True)
        return out
    queue.finish_attempt(job_id, n, status=out.status, reason=out.reason, result=out.result, output_sha=output_sha,
                         first_progress_s=out.start_to_first_progress_s)
    _remove(job_dir, attempt_fd, ("in", "work", "out", "tmp"))
    write_outcome_at(job_dir, attempt_fd, out.as_dict())
    out_dict_sha = output_sha
    if out_dict_sha:
        out.result = dict(out.result or {}, output_sha256=out_dict_sha)
    return out


def _remove(job_dir: Path, attempt_fd: int | None, names: tuple[str, ...], *, whole: bool = False) -> None:
    """Delete `names` in the attempt folder through its fd (links never followed); `whole`:
    everything in it, then the folder itself if its name still leads to the same folder."""
    if whole and attempt_fd is not None:
        names = tuple(os.listdir(attempt_fd))
    for name in names:
        if attempt_fd is not None:
            safe_fs.remove_tree(name, dir_fd=attempt_fd)
        else:
            shutil.rmtree(job_dir / name, ignore_errors=True)
    if whole:
        try:
            same = attempt_fd is None or os.path.samestat(os.fstat(attempt_fd), os.lstat(job_dir))
        except OSError:
            same = False
        if same:
            safe_fs.remove_tree(job_dir)
