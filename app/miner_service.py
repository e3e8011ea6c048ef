"""MinerService: the miner's side of the job market, one market job at a time through
claim -> run -> upload -> submit -> payment.

Each `step()` is one pass: advance every tracked market job by what the chain and the job
queue say, then claim open jobs the devices can take at or above their price floor. `run()`
calls `step()` and the scheduler's `tick()` until its stop event is set.

Progress per market job is kept in SQLite (ctx.paths.data_dir / "miner.sqlite", one row per
job, every change one committed transaction), so a restart resumes at the right step:
  claiming -> claimed -> running -> uploaded -> submitted -> paid   (or rejected / failed)
A job is written as `claiming` before the claim transaction and checked against the chain
after a restart; the queue job id is "market-<id>" and is added only once, so nothing runs
twice. Money is integer NTK wei; times are unix seconds (chain times are block timestamps).

Only `render` jobs are taken for now: the market spec (specURI) is a JobSpec JSON file whose
sha256 is the job's specHash, fetched and verified through the artifact store.

Threading: one thread calls `step()`/`run()` (the chain client and wallet are single-thread);
scheduler events arrive on job threads and only touch this service's SQLite under its lock.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.jobs_service import open_queue, runtime_config

log = logging.getLogger(__name__)

KINDS = frozenset({"render"})
"""Market job kinds this miner runs."""
DEFAULT_S_PER_FRAME = 5.0
"""Expected seconds per rendered frame on a device without a benchmark."""
STATES = ("claiming", "claimed", "running", "uploaded", "submitted", "paid", "rejected", "failed")
FINAL = frozenset({"paid", "rejected", "failed"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS market_jobs (
    job_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    reward_wei TEXT NOT NULL,
    spec_sha TEXT NOT NULL,
    spec_uri TEXT NOT NULL,
    device_key TEXT,
    output_sha TEXT,
    result_uri TEXT,
    tx_claim TEXT,
    tx_submit TEXT,
    tx_paid TEXT,
    reason TEXT,
    claimed_at REAL,
    first_progress_at REAL,
    uploaded_at REAL,
    paid_at REAL,
    updated_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class MarketJobRow:
    job_id: int
    state: str
    kind: str
    reward_wei: int
    device_key: str | None
    output_sha: str | None
    result_uri: str | None
    reason: str | None
    claimed_at: float | None
    first_progress_at: float | None
    uploaded_at: float | None
    paid_at: float | None

    @property
    def queue_id(self) -> str:
        return f"market-{self.job_id}"


class MinerService:
    """See the module docstring.

    market: a wallet.market.MarketClient; account: the miner's signer (LocalAccount);
    devices: an object with `poll() -> list[DeviceState]` (app.devices_service.DeviceService);
    ledger: app.ledger.Ledger (payments and job -> device); s_per_frame: device key ->
    expected seconds per frame, or None for DEFAULT_S_PER_FRAME.
    """

    def __init__(self, ctx: AppContext, market, account, devices, ledger, *, sandbox: str | None = None,
                 s_per_frame: Callable[[str], float | None] | None = None, db_path: Path | None = None):
        self.ctx = ctx
        self.market = market
        self.account = account
        self.devices = devices
        self.ledger = ledger
        self.s_per_frame = s_per_frame or (lambda key: None)
        self.queue = open_queue(ctx)
        self.cfg = runtime_config(ctx, sandbox=sandbox)
        self.store = self.cfg.store
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(db_path or ctx.paths.data_dir / "miner.sqlite"), timeout=30,
                                   isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._states: list[Any] = []
        self._skipped: set[int] = set()
        self.last_progress: dict[int, float] = {}

        from jobs.scheduler import Scheduler

        self.scheduler = Scheduler(self.queue, self.cfg, self._job_devices, self._on_event)
        self.scheduler.recover()

    # ---- rows ----------------------------------------------------------------------------
    def rows(self, *, active_only: bool = False) -> list[MarketJobRow]:
        with self._lock:
            rs = self._db.execute("SELECT * FROM market_jobs ORDER BY job_id").fetchall()
        out = [_row(r) for r in rs]
        return [r for r in out if r.state not in FINAL] if active_only else out

    def row(self, job_id: int) -> MarketJobRow | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM market_jobs WHERE job_id=?", (job_id,)).fetchone()
        return _row(r) if r else None

    def _set(self, job_id: int, **cols: Any) -> None:
        cols["updated_at"] = time.time()
        names = ", ".join(f"{k}=?" for k in cols)
        with self._lock:
            self._db.execute(f"UPDATE market_jobs SET {names} WHERE job_id=?", (*cols.values(), job_id))

    # ---- devices -------------------------------------------------------------------------
    def _job_devices(self) -> list:
        """The devices as the scheduler sees them (jobs ids: "cpu", "gpu:N")."""
        from jobs.execute import Device

        out = []
        for s in self._states:
            i = s.info
            if i.id == "cpu":
                out.append(Device("cpu", "cpu", active=s.active, throttled=s.throttled,
                                  slots=self.ctx.settings.jobs.cpu_slots))
            else:
                mem = i.memory_total_mb if isinstance(i.memory_total_mb, (int, float)) else 0
                out.append(Device(f"gpu:{i.index}", "gpu", memory_mb=int(mem), active=s.active,
                                  throttled=s.throttled, index=i.index))
        return out

    def _key_of(self, jobs_device_id: str | None) -> str | None:
        gpu_id = "cpu" if jobs_device_id == "cpu" else (jobs_device_id or "").replace("gpu:", "cuda:")
        for s in self._states:
            if s.info.id == gpu_id:
                return s.info.key
        return None

    def _on_event(self, queue_id: str, msg: dict[str, Any]) -> None:
        if not queue_id.startswith("market-") or msg.get("type") != "progress":
            return
        job_id = int(queue_id.removeprefix("market-"))
        self.last_progress[job_id] = float(msg.get("fraction") or 0.0)
        with self._lock:
            self._db.execute("UPDATE market_jobs SET first_progress_at=? WHERE job_id=? AND first_progress_at IS NULL",
                             (time.time(), job_id))

    # ---- the loop ------------------------------------------------------------------------
    def poll_devices(self) -> list:
        self._states = list(self.devices.poll())
        return self._states

    def step(self, *, claim: bool = True) -> None:
        """One pass: poll devices, advance tracked jobs, claim new ones (unless `claim` is
        False), start queued ones. Blocking (chain calls and transactions)."""
        self.poll_devices()
        for r in self.rows(active_only=True):
            for _ in range(len(STATES)):  # as far as it can go now (running -> uploaded -> submitted...)
                try:
                    self._advance(r)
                except Exception as e:  # RPC down, store busy...: retried on the next step
                    log.warning("market job %s (%s): %s", r.job_id, r.state, e)
                    break
                nxt = self.row(r.job_id)
                if nxt is None or nxt.state == r.state or nxt.state in FINAL:
                    break
                r = nxt
        if claim:
            self._claim_new()
        self.scheduler.tick()

    def finish_running(self, timeout_s: float | None = None) -> None:
        """Wait for the started jobs to end, then advance them (upload, submit) without claiming more."""
        self.scheduler.wait_idle(timeout_s)
        self.step(claim=False)

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """step() until `stop` is set; then stop running jobs (they are requeued)."""
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:
                    log.exception("miner step failed")
                stop.wait(interval_s)
        finally:
            self.scheduler.shutdown()

    def _advance(self, r: MarketJobRow) -> None:
        m = self.market
        if r.state == "claiming":
            j = m.job(r.job_id)
            if j.miner and j.miner.lower() == self.account.address.lower():
                self._set(r.job_id, state="claimed")
            else:
                with self._lock:
                    self._db.execute("DELETE FROM market_jobs WHERE job_id=?", (r.job_id,))
            return
        if r.state == "claimed":
            self._queue_job(r)
            return
        if r.state == "running":
            from jobs.queue import QueueError

            try:
                q = self.queue.get(r.queue_id)
            except QueueError:
                self._set(r.job_id, state="claimed")
                return
            if q.state == "succeeded" and q.output_sha:
                key = self._key_of(q.device_id) or "cpu"
                self.ledger.assign_job(r.job_id, key, at=time.time())
                self._set(r.job_id, state="uploaded", device_key=key, output_sha=q.output_sha,
                          result_uri=self._result_uri(q.output_sha), uploaded_at=time.time())
            elif q.state in ("failed", "cancelled"):
                self._set(r.job_id, state="failed", reason=q.reason or q.state)
            elif self.market.chain.latest_timestamp() >= self.market.job(r.job_id).deadline:
                self.scheduler.cancel(r.queue_id)  # it can no longer be submitted: give it up
                self._set(r.job_id, state="failed", reason="the deadline passed before the result was ready")
            return
        if r.state == "uploaded":
            from wallet.market import JobStatus

            j = m.job(r.job_id)
            if j.status == JobStatus.CLAIMED:
                res = m.submit(self.account, r.job_id, "0x" + r.output_sha, r.result_uri)
                self._set(r.job_id, state="submitted", tx_submit=res.tx_hash)
            elif j.status >= JobStatus.SUBMITTED:
                self._set(r.job_id, state="submitted")
            return
        if r.state == "submitted":
            self._settle(r)

    def _settle(self, r: MarketJobRow) -> None:
        from wallet.market import JobStatus

        m = self.market
        j = m.job(r.job_id)
        if j.status == JobStatus.SUBMITTED:
            # chain time, as the contract judges it (the embedded chain makes blocks only for transactions)
            if j.submitted_at and m.chain.latest_timestamp() > j.submitted_at + j.review_window_s:
                res = m.release(self.account, r.job_id)
                self._paid(r, res.tx_hash, j.reward_wei)
        elif j.status in (JobStatus.ACCEPTED, JobStatus.RELEASED):
            ev = m.jobs_contract.events.JobAccepted if j.status == JobStatus.ACCEPTED else m.jobs_contract.events.PaymentReleased
            logs = m.chain.read(lambda: ev.get_logs(argument_filters={"id": r.job_id}, from_block=0))
            tx = logs[-1]["transactionHash"].to_0x_hex() if logs else f"job-{r.job_id}"
            self._paid(r, tx, j.reward_wei)
        elif j.status == JobStatus.REJECTED:
            self._set(r.job_id, state="rejected", reason="the buyer rejected the result")

    def _paid(self, r: MarketJobRow, tx_hash: str, amount_wei: int) -> None:
        tx = tx_hash if str(tx_hash).startswith("0x") else "0x" + str(tx_hash)
        self.ledger.record_payment(r.job_id, tx, amount_wei, timestamp=time.time(), device_key=r.device_key)
        self._set(r.job_id, state="paid", tx_paid=tx, paid_at=time.time())

    def _result_uri(self, sha: str) -> str:
        if self.store.remote:
            return f"{self.store.remote}/{sha}"
        return self.store.path(sha).resolve().as_uri()

    # ---- claiming ------------------------------------------------------------------------
    def _load_spec(self, spec_sha: str, spec_uri: str):
        """The market spec as a JobSpec (fetched and checked against its hash), or raises."""
        from jobs.spec import parse_spec

        path = self.store.fetch(spec_sha, spec_uri)
        return parse_spec(json.loads(Path(path).read_text(encoding="utf-8")))

    def _queue_job(self, r: MarketJobRow) -> None:
        from jobs.queue import QueueError
        from jobs.spec import JobSpec

        with self._lock:
            sr = self._db.execute("SELECT spec_sha, spec_uri FROM market_jobs WHERE job_id=?", (r.job_id,)).fetchone()
        spec = self._load_spec(sr["spec_sha"], sr["spec_uri"])
        spec = JobSpec.model_validate(spec.model_dump() | {"id": r.queue_id})
        try:
            self.queue.add(spec)
        except QueueError:
            pass  # already queued or running (a restart between add and the state change)
        self._set(r.job_id, state="running")

    def free_slots(self) -> int:
        cap = sum((self.ctx.settings.jobs.cpu_slots if s.info.id == "cpu" else 1)
                  for s in self._states if s.active and not s.throttled)
        busy = sum(1 for r in self.rows(active_only=True) if r.state in ("claiming", "claimed", "running"))
        return cap - busy

    def price_ok(self, reward_wei: int, frames: int) -> tuple[bool, float, float]:
        """(at or above the floor of some active device, NTK per hour offered, the floor) for the
        device that would value it best."""
        best: tuple[bool, float, float] = (False, 0.0, 0.0)
        for s in self._states:
            if not s.active or s.throttled:
                continue
            sec = max(1.0, frames * (self.s_per_frame(s.info.key) or DEFAULT_S_PER_FRAME))
            per_h = (reward_wei / 10**18) / (sec / 3600.0)
            floor = self.ctx.settings.device(s.info.key).price_floor_ntk_per_hour
            if per_h >= floor and (not best[0] or per_h > best[1]):
                best = (True, per_h, floor)
        return best

    def _claim_new(self) -> None:
        from wallet.market import JobStatus

        if self.free_slots() <= 0:
            return
        m = self.market
        now = m.chain.latest_timestamp()
        known = {r.job_id for r in self.rows()}
        for j in m.jobs(status=JobStatus.OPEN):
            if self.free_slots() <= 0:
                return
            if j.id in known or j.id in self._skipped or j.kind not in KINDS or j.deadline <= now:
                continue
            sha = j.spec_hash.removeprefix("0x")
            try:
                spec = self._load_spec(sha, j.spec_uri)
            except Exception as e:
                log.info("market job %s: unusable spec (%s); skipped", j.id, e)
                self._skipped.add(j.id)
                continue
            if spec.kind != j.kind:
                log.info("market job %s: spec kind %s is not %s; skipped", j.id, spec.kind, j.kind)
                self._skipped.add(j.id)
                continue
            frames = _frames(spec)
            ok, per_h, floor = self.price_ok(j.reward_wei, frames)
            if not ok:
                continue  # may pass later, when a device's floor or state changes
            with self._lock:
                self._db.execute("INSERT INTO market_jobs (job_id, state, kind, reward_wei, spec_sha, spec_uri, "
                                 "updated_at) VALUES (?, 'claiming', ?, ?, ?, ?, ?)",
                                 (j.id, j.kind, str(j.reward_wei), sha, j.spec_uri, time.time()))
            try:
                res = m.claim(self.account, j.id)
            except Exception as e:
                log.info("market job %s: claim failed (%s)", j.id, e)
                with self._lock:
                    self._db.execute("DELETE FROM market_jobs WHERE job_id=?", (j.id,))
                self._skipped.add(j.id)
                continue
            log.info("claimed market job %s: %.3f NTK/h offered, floor %.3f", j.id, per_h, floor)
            self._set(j.id, state="claimed", tx_claim=res.tx_hash, claimed_at=time.time())
            self._queue_job(self.row(j.id))

    # ---- status --------------------------------------------------------------------------
    def device_lines(self) -> list[dict[str, Any]]:
        """One status record per device: id, mode, active, job (market id), progress, temp, earned today."""
        running = {rj_id: rj.device_id for rj_id, rj in self.scheduler.running().items()}
        day = time.strftime("%Y-%m-%d")
        out = []
        for s in self._states:
            jid = next((q for q, d in running.items() if self._key_of(d) == s.info.key), None)
            mid = int(jid.removeprefix("market-")) if jid and jid.startswith("market-") else None
            t = getattr(s.telemetry, "temp_c", None) if s.telemetry else None
            try:
                today = sum(p.amount_wei for p in self.ledger.payments(device_key=s.info.key, since_day=day))
            except Exception:
                today = 0
            out.append({"device": s.info.id, "mode": s.mode, "active": s.active, "throttled": s.throttled,
                        "job": mid, "progress": self.last_progress.get(mid) if mid else None,
                        "temp_c": t if isinstance(t, (int, float)) else None, "earned_today_wei": today})
        return out

    def close(self) -> None:
        self.scheduler.shutdown()
        self.queue.close()
        with self._lock:
            self._db.close()


def _frames(spec) -> int:
    p = spec.params
    if p.get("count") is not None:
        return max(1, int(p["count"]))
    scene = p.get("scene") if isinstance(p.get("scene"), dict) else {}
    n = int((scene.get("outputs") or {}).get("count", 1)) - int(p.get("start", 0))
    return max(1, n)


def _row(r: sqlite3.Row) -> MarketJobRow:
    return MarketJobRow(job_id=r["job_id"], state=r["state"], kind=r["kind"], reward_wei=int(r["reward_wei"]),
                        device_key=r["device_key"], output_sha=r["output_sha"], result_uri=r["result_uri"],
                        reason=r["reason"], claimed_at=r["claimed_at"], first_progress_at=r["first_progress_at"],
                        uploaded_at=r["uploaded_at"], paid_at=r["paid_at"])
