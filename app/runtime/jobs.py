"""App-level wiring of the job runtime: builds the queue, artifact store and runtime
config from the app's paths and settings. Used by `kminer job ...` and by MinerService."""

from __future__ import annotations

import re
import sqlite3
import tarfile
from pathlib import Path

from app.context import AppContext
from common.device_id import DeviceId
from common.textsafe import safe_line
from jobs.artifacts import ArtifactError, ArtifactStore
from jobs.attempt_files import log_tail
from jobs.execute import Device, RuntimeConfig
from jobs.queue import JobQueue
from jobs.sandbox import resolve_level
from jobs.url_policy import UrlPolicy


def open_queue(ctx: AppContext) -> JobQueue:
    return JobQueue(ctx.paths.jobs_db)


def runtime_config(ctx: AppContext, *, sandbox: str | None = None, local_chain: bool = False) -> RuntimeConfig:
    """The runtime as the settings say (`sandbox` overrides the level for one run); market jobs'
    input URIs under `input_policy` (`local_chain`: the market is the embedded chain)."""
    s = ctx.settings.jobs
    level = resolve_level(sandbox or s.sandbox)
    p = ctx.paths
    hide = [p.data_dir, p.config_dir, p.log_dir, p.cache_dir, Path.home()]
    return RuntimeConfig(jobs_dir=p.jobs_dir, store=ArtifactStore(p.artifacts_dir, remote=s.artifact_store_url), level=level,
                         allow_code_jobs_basic=s.allow_code_jobs_basic, max_output_mb=s.max_output_mb, hide=hide,
                         nice=s.priority, allow_market_jobs_basic=s.allow_market_jobs_basic,
                         url_policy=input_policy(ctx, local_chain=local_chain))


def input_policy(ctx: AppContext, *, local_chain: bool = False) -> UrlPolicy:
    """What URIs a stranger's spec, result or card may name (jobs.url_policy): public http(s)
    hosts, the hosts the user trusts (`jobs.input_hosts`), the fsspec scheme of the shared store
    the user chose (s3://...), and local files only inside this home's artifact store and the
    shared store folder. On a local market (`local_market`: the embedded chain, a devnet on
    loopback) every party is this machine's user, so local files are allowed there."""
    s = ctx.settings.jobs
    roots = {str(ctx.paths.artifacts_dir)}
    shared = s.artifact_store_url or ""
    scheme = shared.split("://", 1)[0].lower() if "://" in shared else ""
    if scheme == "file":
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        roots.add(url2pathname(urlsplit(shared).path))
    remote = frozenset({scheme}) if scheme and scheme != "file" else frozenset()  # the store the user chose (s3...)
    return UrlPolicy(allow_hosts=s.input_host_set(), local_roots=frozenset(roots), allow_local_files=local_chain,
                     fsspec_schemes=remote)


def read_delivered_json(path: Path, *, root: Path) -> object:
    """A JSON file of a delivered job output under `root` (a dataset's annotations.json): read
    without following links, capped (1 GiB) and decoded with a depth limit, so a poisoned file
    is one ValueError line, never a crash of the process showing it."""
    from common.safejson import ANNOTATIONS_LIMITS, load_file

    return load_file(path, ANNOTATIONS_LIMITS, what=Path(path).name, root=root)


def local_market(chain) -> bool:
    """Whether every party of `chain`'s market is on this machine: the embedded chain, or a
    JSON-RPC node listening on loopback (a devnet). There local files may be inputs."""
    if getattr(chain, "embedded", False):
        return True
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(getattr(chain, "rpc_url", None) or "").hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stranger_text(text: str | None) -> str | None:
    """A reason or note a job (a stranger) may have written, as one line safe to show."""
    return None if text is None else safe_line(text, max_chars=2000)


def parse_device(text: str, *, cpu_slots: int = 1) -> Device:
    """`cpu`, or a GPU as `cuda:N` / `gpu:N` / `N` (N = NVIDIA's device index, nvidia-smi's)."""
    t = text.strip().lower()
    if t == "cpu":
        return Device.of(DeviceId.cpu(), slots=cpu_slots)
    for prefix in ("gpu:", "cuda:", ""):
        if t.startswith(prefix) and t[len(prefix):].isdigit():
            return Device.of(DeviceId.gpu(None, int(t[len(prefix):])), memory_mb=1 << 30)
    raise ValueError(f"unknown device {text!r}: use cpu or cuda:N")


class JobsService:
    """The job queue as the GUI shows it: plain dicts, thread-safe (the queue locks itself).

    Calls are blocking SQLite reads/writes: run them off the GUI thread.
    """

    LOG_TAIL_BYTES = 256 * 1024
    IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

    def __init__(self, ctx: AppContext, market=None, devices=None):
        """market: the app.market_session.MarketSession whose miner claimed market jobs (their buyer,
        reward and progress join the rows); None: queue rows only. devices: the app.devices.
        DeviceService whose devices name the queue's device keys for people ("cuda:0", not the
        GPU's UUID); None: the keys as they are."""
        self._ctx = ctx
        self._queue = open_queue(ctx)
        self._store = ArtifactStore(ctx.paths.artifacts_dir)
        self.market = market
        self._devices = devices

    def device_label(self, device_id: str | None) -> str | None:
        """A device the queue names by its key, as people read it ("cpu", "cuda:N")."""
        if device_id is None or self._devices is None:
            return device_id
        try:
            return self._devices.device(device_id).id
        except ValueError:  # a device of another rig or an older run (an NVML index as key)
            return device_id

    def jobs(self, limit: int = 500) -> list[dict]:
        """Newest first: id, kind, state, attempts, reason, device_id (and `device`, its label),
        created_at, updated_at..., run_s (seconds its attempts ran, None before the first),
        and for the market jobs of the session's miner: market_job, buyer, reward_wei, progress
        (0..1 or None), payment ("paid", "awaiting payment", "rejected", "not paid" or None) and paid_at;
        for the order-market shards of its order miner: order (app.orders.rig.ShardView.as_dict(): ref
        p2p:N, shard, kind, stage...), buyer, reward_wei, payment and paid_at the same way. Jobs
        from elsewhere (`kminer job run`) have those as None."""
        rows = [j.as_dict() for j in self._queue.list(limit=limit)]
        rows.sort(key=lambda r: r["updated_at"], reverse=True)
        miner = getattr(self.market, "miner", None)
        ran = self._queue.run_seconds()
        for r in rows:
            r["reason"], r["kind"] = stranger_text(r["reason"]), stranger_text(r["kind"])
            r["device"] = self.device_label(r["device_id"])
            r["run_s"] = ran.get(r["id"])
            r.update(market_job=None, order=None, buyer=None, reward_wei=None,
                     progress=1.0 if r["state"] == "succeeded" else None, payment=None, paid_at=None)
            if miner is None:
                continue
            shard = self._order_shard(miner, r["id"])
            if shard is not None:
                r.update(order=shard.as_dict(), buyer=shard.buyer, reward_wei=shard.reward_wei, payment=shard.payment,
                         paid_at=shard.paid_at)
                if r["state"] in ("running", "paused"):
                    r["progress"] = miner.queue_progress.last.get(r["id"])
                continue
            try:
                job_id = miner.market_id(r["id"])
                m = miner.row(job_id) if job_id is not None else None
            except sqlite3.Error:  # the session closed its miner meanwhile (lock, network switch)
                miner = None
                continue
            if m is not None:
                r.update(market_job=job_id, buyer=m.buyer, reward_wei=m.reward_wei, paid_at=m.paid_at,
                         payment={"paid": "paid", "rejected": "rejected", "failed": "not paid"}.get(
                             m.state, "awaiting payment" if m.state in ("uploaded", "submitted") else None))
                if r["state"] in ("running", "paused"):
                    r["progress"] = miner.last_progress.get(job_id)
        return rows

    @staticmethod
    def _order_shard(miner, queue_id: str):
        try:
            return miner.queue_work(queue_id)
        except Exception:  # the session closed its miner meanwhile
            return None

    def attempts(self, job_id: str) -> list[dict]:
        """The job's attempts, oldest first (each with `device`, its device's label)."""
        return [a.as_dict() | {"device": self.device_label(a.device_id), "reason": stranger_text(a.reason)}
                for a in self._queue.attempts(job_id)]

    def job(self, job_id: str) -> dict:
        """One job as `jobs()` shows it; jobs.queue.QueueError if there is no such job."""
        row = self._queue.get(job_id).as_dict()
        row["reason"], row["kind"] = stranger_text(row["reason"]), stranger_text(row["kind"])
        return row

    # ---- a job's log and outputs ------------------------------------------------------------
    def log(self, job_id: str, *, max_bytes: int | None = None) -> str:
        """The job's log: each attempt's worker output (stdout and stderr: what the job printed,
        tracebacks), oldest attempt first, each under a header line with its outcome. Only the
        last `max_bytes` of an attempt's log are kept (a note says so). "" if nothing was logged."""
        limit = max_bytes or self.LOG_TAIL_BYTES
        parts = []
        for a in self._queue.attempts(job_id):
            where = self.device_label(a.device_id) or "?"
            head = f"── attempt {a.n}: {a.state} on {where} ({a.sandbox or '?'} sandbox)"
            if a.reason:
                head += f": {stranger_text(a.reason)}"
            text = log_tail(self._attempt_dir(job_id, a) / "worker.log", limit)  # bounded, no link followed, escaped
            parts.append(head + "\n" + (text if text.strip() else "(no output)\n"))
        return "\n".join(parts)

    def _attempt_dir(self, job_id: str, a) -> Path:
        if a.job_dir and Path(a.job_dir).name == f"attempt-{a.n}":
            return Path(a.job_dir)
        return self._ctx.paths.jobs_dir / job_id / f"attempt-{a.n}"

    def outputs(self, job_id: str) -> list[dict]:
        """The files of a finished job's outputs (name, size in bytes, image or not), listed from
        its stored archive; [] when it has none (not finished, failed, or removed)."""
        archive = self._output_archive(job_id)
        if archive is None:
            return []
        out = []
        with tarfile.open(archive, mode="r:") as tar:
            for m in tar:
                if m.isreg():
                    out.append({"name": m.name, "size": m.size, "image": m.name.lower().endswith(self.IMAGE_SUFFIXES)})
        return out

    def output_images(self, job_id: str, *, limit: int = 8, max_bytes: int = 8 << 20) -> list[tuple[str, bytes]]:
        """Up to `limit` output images (name, file bytes), rendered RGB frames (images/) first;
        images over `max_bytes` are skipped. Bytes only: the caller decodes them."""
        archive = self._output_archive(job_id)
        if archive is None:
            return []
        with tarfile.open(archive, mode="r:") as tar:
            members = [m for m in tar if m.isreg() and m.name.lower().endswith(self.IMAGE_SUFFIXES)
                       and m.size <= max_bytes]
            members.sort(key=lambda m: (not m.name.startswith("images/"), m.name))
            out = []
            for m in members[:limit]:
                f = tar.extractfile(m)
                if f is not None:
                    out.append((m.name, f.read()))
        return out

    def output_folder(self, job_id: str) -> Path:
        """The job's outputs unpacked (checked against their hash) into the cache folder, once;
        returns the folder. ArtifactError when the job has no stored outputs."""
        rec = self._queue.get(job_id)
        if not rec.output_sha or not self._store.has(rec.output_sha):
            raise ArtifactError(f"job {job_id} has no stored outputs")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", job_id)[:80]
        dest = self._ctx.paths.cache_dir / "job-outputs" / f"{safe}-{rec.output_sha[:12]}"
        if not dest.is_dir():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._store.materialize(rec.output_sha, dest, kind="dir")
        return dest

    def _output_archive(self, job_id: str) -> Path | None:
        rec = self._queue.get(job_id)
        if not rec.output_sha or not self._store.has(rec.output_sha):
            return None
        return self._store.path(rec.output_sha)

    def cancel(self, job_id: str) -> str:
        """Cancel a queued job at once, or flag a running one; returns its state after the call."""
        return self._queue.request_cancel(job_id)

    def close(self) -> None:
        self._queue.close()

