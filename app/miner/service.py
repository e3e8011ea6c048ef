"""MinerService: the miner's side of the job market, each market job through
claim -> run -> upload -> submit -> payment.

Each `step()` is one pass: poll the devices (and feed their power to the earnings ledger),
read the market events the indexer stored since the last pass (a cursor), advance every
tracked job by what those events and the job queue say, claim open jobs the devices can take
at or above their price floor, move auto-priced floors, start queued jobs.

Job kinds: render, train, infer and verify (a market `verify` job is a spec whose engine is
verify-render or verify-train). A spec's inputs (sha256 + uri; a relative uri is relative to
the spec's own uri) are fetched into the artifact store and checked before the job is
claimed; a job whose spec or inputs cannot be had is skipped with a logged reason (a
transient failure is retried with backoff, a few times). Prices: see app.miner.pricing.

State per market job is kept in SQLite (app.miner.db), so a restart resumes at the right step:
  claiming -> claimed -> running -> uploaded -> submitted -> paid   (or rejected / failed)
A job is written as `claiming` before the claim transaction and checked against the chain
after a restart; its queue job id is "market-<chain id>-<market address prefix>-<id>"
(`queue_id()`) and is added only once, so nothing runs twice. The miner DB, the queue ids and
the miner's event index belong to one deployment of the market: a new one (another network,
a restarted dev node) sets the old miner DB aside as miner-<namespace>.sqlite and takes its
own, so job ids that start again at 1 never meet the old ones. Chain state of a tracked job is read only when an event says it changed (or it waits
in `claiming`/`uploaded`, one read each). A pass that hits a transient failure (RPC down)
keeps every state and the next pass waits a backoff (doubling from `backoff_first_s` up to
`backoff_cap_s`, reset by a good pass); `status_text()` says so.

Money is integer NTK wei; times are unix seconds (chain times are block timestamps).
Threading: one thread calls `step()` and every other method that touches the chain (the chain
client and the indexer are single-thread); scheduler events arrive on job threads and only
touch the miner DB (locked) and plain dicts. Read-only views (`jobs_table`, `device_lines`,
`pricing_decisions`, `floor_changes`, `status_text`) may be called from any thread.
One process mines with a home: the service holds `<data>/miner.lock` (app.home_lock) from
construction to close(); a second process gets HomeBusy with a one-line reason.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.amounts import ntk_text
from app.context import AppContext
from app.home_lock import HomeLock
from app.miner.claims import (KINDS, MIN_OBSERVE_S, SAFETY, SUBMIT_MARGIN_S, ClaimsMixin, is_transient,
                              _Transient)
from app.miner.db import (FINAL, STATES, FloorChangeRow, MarketJobRow, MinerDB, MinerJobView, PricingDecision,
                          deployment_db)
from app.runtime import artifact_uri, open_queue, runtime_config
from gpu.bench import BenchStore
from jobs.execute import Device
from jobs.queue import APP_STOPPED, QueueError
from jobs.scheduler import Scheduler
from wallet.errors import ContractRevert
from wallet.indexer import for_deployment

log = logging.getLogger(__name__)

__all__ = ["MinerService", "KINDS", "MarketJobRow", "MinerJobView", "PricingDecision", "FloorChangeRow", "STATES", "FINAL"]

DEV_CHAIN_ID = 31337
"""anvil's and hardhat's chain id: a local dev node that mines only for transactions."""
MAX_RUN_ATTEMPTS = 3
"""A claimed job whose run fails is run again, up to this many runs in all, while the
deadline leaves time for another run."""
_JOB_EVENTS = ("JobPosted", "JobClaimed", "ResultSubmitted", "JobAccepted", "JobRejected", "PaymentReleased",
               "JobRefunded")


class MinerService(ClaimsMixin):
    """See the module docstring.

    market: wallet.market.MarketClient; account: the miner's signer (LocalAccount); devices:
    `poll() -> list[DeviceState]` (app.devices.service.DeviceService); ledger: app.earnings.ledger.Ledger;
    indexer: a wallet.indexer.Indexer of the market (default: one in data_dir, built on the
    first step, in the stepping thread); earnings: app.earnings.service.EarningsService
    (device power recorded each pass) or None; bench: gpu.bench.BenchStore (default: the app's).
    """

    def __init__(self, ctx: AppContext, market, account, devices, ledger, *, sandbox: str | None = None,
                 indexer=None, earnings=None, bench=None, db_path: Path | None = None,
                 backoff_first_s: float = 1.0, backoff_cap_s: float = 60.0):
        # one miner per home: another process on this miner DB could run a claimed job again
        self._home_lock = HomeLock(ctx.paths.data_dir / "miner.lock",
                                   "another Knowledge Miner process (the app or `kminer agent`) is mining with this "
                                   "home; stop it first, or give this one its own KMINER_HOME")
        self._home_lock.acquire()
        try:
            self._open(ctx, market, account, devices, ledger, sandbox=sandbox, indexer=indexer, earnings=earnings,
                       bench=bench, db_path=db_path, backoff_first_s=backoff_first_s, backoff_cap_s=backoff_cap_s)
        except BaseException:
            self._home_lock.release_all()
            raise

    def _open(self, ctx, market, account, devices, ledger, *, sandbox, indexer, earnings, bench, db_path,
              backoff_first_s, backoff_cap_s) -> None:
        self.ctx = ctx
        self.market = market
        self.account = account
        self.devices = devices
        self.ledger = ledger
        self.earnings = earnings
        self.bench = bench if bench is not None else BenchStore(ctx.paths.bench_file)
        self._indexer = indexer
        self.queue = open_queue(ctx)
        self.cfg = runtime_config(ctx, sandbox=sandbox)
        self.store = self.cfg.store
        self.namespace = f"{market.chain.chain_id}-{market.deployment.job_market[2:10].lower()}"
        self._qprefix = f"market-{self.namespace}-"
        self.db = MinerDB(db_path or deployment_db(ctx.paths.data_dir, self.namespace))
        self._states: list[Any] = []
        self.last_progress: dict[int, float] = {}
        self._progress: dict[int, tuple[tuple[float, float], tuple[float, float]]] = {}  # first, last (t, f)
        self.backoff_first_s, self.backoff_cap_s = backoff_first_s, backoff_cap_s
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._waiting_on: str | None = None
        self._chain_now = 0
        self._busy: dict[str, list[float]] | None = None  # device key -> [window start (unix s), passes, busy passes]
        self._busy_saved_at = 0.0
        from wallet.embedded import empty_block_miner  # deferred: loads py-evm and web3 (~1 s)

        self._mine_empty = empty_block_miner(market.chain.w3)
        self.scheduler = Scheduler(self.queue, self.cfg, self._job_devices, self._on_event)
        self.scheduler.recover()

    # ---- views (any thread) --------------------------------------------------------------
    def rows(self, *, active_only: bool = False) -> list[MarketJobRow]:
        return self.db.rows(active_only=active_only)

    def row(self, job_id: int) -> MarketJobRow | None:
        return self.db.row(job_id)

    def jobs_table(self, limit: int = 200) -> list[MinerJobView]:
        """The newest `limit` market jobs of this miner, newest first, for a table."""
        out = []
        for r in reversed(self.db.rows(limit=limit)):
            prog = 1.0 if r.state in ("uploaded", "submitted", "paid") else self.last_progress.get(r.job_id)
            out.append(MinerJobView(**{f.name: getattr(r, f.name) for f in fields(r)}, progress=prog))
        return out

    def pricing_decisions(self, limit: int = 100) -> list[PricingDecision]:
        """Newest first: each claim decision with its NTK/h, floor and reason."""
        return self.db.pricing_decisions(limit)

    def floor_changes(self, limit: int = 100, device_key: str | None = None) -> list[FloorChangeRow]:
        """Newest first: auto-pricing moves ("floor changed from X to Y because ...": `.text()`)."""
        return self.db.floor_changes(limit, device_key)

    def status_text(self) -> str:
        """"" while all is well, else e.g. "waiting for RPC (retry in 8 s)"."""
        if self._waiting_on is None:
            return ""
        left = max(0, round(self._retry_at - time.monotonic()))
        return f"waiting for {self._waiting_on} (retry in {left} s)"

    @property
    def backoff_s(self) -> float:
        return self._backoff_s

    # ---- devices -------------------------------------------------------------------------
    def _job_devices(self) -> list[Device]:
        """The devices as the scheduler sees them: each by its stable key (DeviceId)."""
        out = []
        for s in self._states:
            mem = s.info.memory_total_mb if isinstance(s.info.memory_total_mb, (int, float)) else 0
            out.append(Device.of(s.info.ident, memory_mb=0 if s.info.kind == "cpu" else int(mem), active=s.active,
                                 throttled=s.throttled, slots=self._capacity(s)))
        return out

    def _known_key(self, jobs_device_id: str | None) -> str | None:
        """The key of a device of this rig the job queue names (it names devices by their key)."""
        return jobs_device_id if any(s.info.key == jobs_device_id for s in self._states) else None

    def _capacity(self, s) -> int:
        return self.ctx.settings.jobs.cpu_slots if s.info.ident.is_cpu else 1

    def _running_by_key(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rj in self.scheduler.running().values():
            k = self._known_key(rj.device_id)
            if k:
                out[k] = out.get(k, 0) + 1
        return out

    def queue_id(self, job_id: int) -> str:
        """The job-queue id of market job `job_id` of this deployment."""
        return f"{self._qprefix}{job_id}"

    def market_id(self, queue_id: str | None) -> int | None:
        """The market job id behind a queue id of this deployment, else None."""
        if not queue_id or not queue_id.startswith(self._qprefix):
            return None
        return int(queue_id[len(self._qprefix):])

    def _on_event(self, queue_id: str, msg: dict[str, Any]) -> None:
        job_id = self.market_id(queue_id)
        if job_id is None or msg.get("type") != "progress":
            return
        now, f = time.time(), float(msg.get("fraction") or 0.0)
        self.last_progress[job_id] = f
        first = self._progress.get(job_id, ((now, f), (now, f)))[0]
        self._progress[job_id] = (first, (now, f))
        self.db.set_first_progress(job_id, now)

    def poll_devices(self) -> list:
        self._states = list(self.devices.poll())
        if self.earnings is not None:
            try:
                self.earnings.record_states(self._states)
            except Exception:
                log.exception("recording device power failed")
        return self._states

    # ---- the loop ------------------------------------------------------------------------
    def step(self, *, claim: bool = True, start: bool = True) -> None:
        """One pass (see the module docstring); `claim=False` advances without claiming;
        `start=False` leaves the scheduler alone (no queued job starts: a clean stop).
        Blocking (chain calls and transactions). Never raises for transient failures: they
        set the backoff and `status_text()`."""
        self.poll_devices()
        if time.monotonic() >= self._retry_at:
            try:
                self._chain_pass(claim)
            except Exception as e:
                if not (isinstance(e, _Transient) or is_transient(e)):
                    raise
                if isinstance(e, _Transient):  # its text already starts with what it waits on
                    self._set_backoff(e.what, e.cause)
                else:
                    self._set_backoff("RPC", e)
            else:
                if self._waiting_on is not None:
                    log.info("%s is back", self._waiting_on)
                self._backoff_s, self._retry_at, self._waiting_on = 0.0, 0.0, None
        self._track_busy()
        if start:
            self.scheduler.tick()

    def _set_backoff(self, what: str, e: BaseException) -> None:
        self._backoff_s = min(self.backoff_cap_s, self._backoff_s * 2 if self._backoff_s else self.backoff_first_s)
        self._retry_at = time.monotonic() + self._backoff_s
        self._waiting_on = what
        log.warning("miner pass stopped (%s: %s); retry in %.0f s", what, e, self._backoff_s)

    def _chain_pass(self, claim: bool) -> None:
        self._chain_now = self.market.chain.latest_timestamp()
        self._read_events()
        held: _Transient | None = None
        for r in self.rows(active_only=True):
            for _ in range(len(STATES)):  # as far as it can go now (running -> uploaded -> submitted...)
                try:
                    self._advance(r)
                except _Transient as e:  # this job's upload: the other jobs (their payments) go on
                    held = held or e
                    break
                except Exception as e:
                    if is_transient(e):
                        raise
                    log.warning("market job %s (%s): %s", r.job_id, r.state, e)
                    break
                nxt = self.row(r.job_id)
                if nxt is None or nxt.state == r.state or nxt.state in FINAL:
                    break
                r = nxt
        if held is not None:
            raise held  # the backoff and status_text() say what is waiting
        if claim:
            self._claim_new()
        self._auto_price()

    def finish_running(self, timeout_s: float | None = None) -> bool:
        """Wait for the started jobs to end, then advance them (upload, submit) without
        claiming more; False if they did not end in time."""
        done = self.scheduler.wait_idle(timeout_s)
        self.step(claim=False)
        return done

    def pause_running(self) -> list[str]:
        """Stop every running job now (each is requeued and runs again on the next start)."""
        ids = list(self.scheduler.running())
        self.scheduler.shutdown()
        return ids

    def pause_job(self, queue_id: str) -> None:
        """Stop one running job now; it is requeued (its market job stays `running`)."""
        rj = self.scheduler.running().get(queue_id)
        if rj is not None:
            rj.handle.cancel(APP_STOPPED)

    def expected_left_s(self, queue_id: str, now: float | None = None) -> float | None:
        """Seconds a running market job still needs, from its progress rate; None if unknown."""
        job_id = self.market_id(queue_id)
        p = None if job_id is None else self._progress.get(job_id)
        if p is None:
            return None
        (t0, f0), (t1, f1) = p
        if f1 >= 1.0:
            return 0.0
        if t1 - t0 < MIN_OBSERVE_S or f1 <= f0:
            return None
        return max(0.0, (1.0 - f1) / ((f1 - f0) / (t1 - t0)) - ((now or time.time()) - t1))

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

    # ---- events --------------------------------------------------------------------------
    def indexer(self):
        if self._indexer is None:
            chain = self.market.chain
            path = self.ctx.paths.data_dir / f"miner-index-{self.namespace}.sqlite"
            self._indexer = for_deployment(chain, path, self.market.deployment)
        return self._indexer

    def _read_events(self) -> None:
        """Sync the indexer, then apply the job events after our cursor (oldest first)."""
        from wallet.market import KIND_NAMES  # deferred: loads web3 (~1.5 s)

        idx = self.indexer()
        idx.sync()
        cur = json.loads(self.db.meta("cursor") or "[-1, -1]")
        tracked = {r.job_id for r in self.rows(active_only=True)}
        me = self.account.address.lower()
        while True:
            evs = idx.events_after(cur[0], cur[1], names=_JOB_EVENTS, limit=1000)
            for ev in evs:
                a, jid = ev.args, ev.job_id
                if ev.name == "JobPosted":
                    self.db.add_open(jid, buyer=a.get("buyer"), kind=KIND_NAMES.get(int(a["kind"]), str(a["kind"])),
                                     reward_wei=int(a["reward"]), deadline=int(a["deadline"]),
                                     spec_sha=str(a["specHash"]).removeprefix("0x"), spec_uri=a["specURI"])
                elif ev.name in ("JobClaimed", "JobRefunded"):
                    self.db.drop_open(jid)
                ours = ev.name in ("JobClaimed", "ResultSubmitted") and str(a.get("miner", "")).lower() == me
                if jid in tracked and not ours:  # our own claim and submit are known already
                    self.db.mark_dirty(jid)
            if evs:
                cur = [evs[-1].block, evs[-1].log_index]
                self.db.set_meta("cursor", json.dumps(cur))
            if len(evs) < 1000:
                return

    # ---- advancing tracked jobs -----------------------------------------------------------
    def _advance(self, r: MarketJobRow) -> None:
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        m = self.market
        if r.state == "claiming":
            j = m.job(r.job_id)
            if j.miner and j.miner.lower() == self.account.address.lower():
                self.db.set(r.job_id, state="claimed", dirty=0, deadline=j.deadline, buyer=j.buyer)
            else:
                self.db.delete(r.job_id)
            return
        if r.state == "claimed":
            if r.deadline is not None and self._chain_now >= r.deadline:
                self.db.set(r.job_id, state="failed", reason="the deadline passed before the job could start")
                return
            self._queue_job(r)
            return
        if r.state == "running":
            self._advance_running(r)
            return
        if r.state == "uploaded":
            j = m.job(r.job_id)
            late = "the deadline passed before the result could be submitted"
            if (j.status == JobStatus.CLAIMED and self._chain_now <= j.deadline and time.time() >= j.deadline + 1
                    and self._nudge_chain_time()):  # a chain whose last block is old: bring its time up first
                self._chain_now = m.chain.latest_timestamp()
            if j.status == JobStatus.CLAIMED and self._chain_now > j.deadline:
                self.db.set(r.job_id, state="failed", reason=late)  # the contract refuses it now
                return
            if j.status == JobStatus.CLAIMED:
                try:
                    res = m.submit(self.account, r.job_id, "0x" + r.output_sha, r.result_uri)
                except ContractRevert as e:  # chain time was past the deadline after all
                    if e.revert.name != "DeadlinePassed":
                        raise
                    self.db.set(r.job_id, state="failed", reason=late)
                    return
                j = m.job(r.job_id)
                self.db.set(r.job_id, state="submitted", tx_submit=res.tx_hash, submitted_at=j.submitted_at,
                            review_window_s=j.review_window_s, dirty=0)
            elif j.status >= JobStatus.SUBMITTED:
                self.db.set(r.job_id, state="submitted", submitted_at=j.submitted_at, review_window_s=j.review_window_s,
                            dirty=1)
            else:
                self.db.set(r.job_id, state="failed", reason=f"the job is {j.status.name.lower()} on the chain")
            return
        if r.state == "submitted":
            self._settle(r)

    def _advance_running(self, r: MarketJobRow) -> None:
        try:
            q = self.queue.get(self.queue_id(r.job_id))
        except QueueError:
            self.db.set(r.job_id, state="claimed")
            return
        if q.state == "succeeded" and q.output_sha:
            if self.store.remote:
                try:  # the result must be where the buyer looks for it before it is submitted
                    self.store.put_file(self.store.path(q.output_sha))
                except Exception as e:
                    raise _Transient("the artifact store", e) from e
            key = self._known_key(q.device_id) or r.device_key or "cpu"
            self.ledger.assign_job(r.job_id, key, at=time.time())
            self.db.set(r.job_id, state="uploaded", device_key=key, output_sha=q.output_sha,
                        result_uri=artifact_uri(self.store, q.output_sha), uploaded_at=time.time())
        elif q.state == "failed" and self._retry_blocker(r, q) is None:
            self.queue.add(q.spec)  # the same spec again; the queue keeps counting the attempts
            self._progress.pop(r.job_id, None)  # the new run's rate is judged afresh
            self.db.set(r.job_id, reason=f"attempt {q.attempts} failed ({q.reason}); running it again")
            log.warning("market job %s: attempt %s failed (%s); running it again", r.job_id, q.attempts, q.reason)
        elif q.state in ("failed", "cancelled"):
            blocker = self._retry_blocker(r, q) if q.state == "failed" else None
            self.db.set(r.job_id, state="failed", reason=(q.reason or q.state) + (f" ({blocker})" if blocker else ""))
        elif r.deadline is not None and self._chain_now >= r.deadline:
            self._give_up(r, "the deadline passed before the result was ready")
        else:
            why = self._late(r)
            if why:
                self._give_up(r, why)

    def _retry_blocker(self, r: MarketJobRow, q) -> str | None:
        """Why a failed run of a claimed job is not run again, or None to run it again: a
        failure (worker killed, out of memory, a crash) may not come back, and the stake and the
        reward are lost unless a result arrives before the deadline."""
        if q.attempts >= MAX_RUN_ATTEMPTS:
            return f"gave up after {q.attempts} attempts"
        if r.deadline is not None:
            need = (r.expected_s or 0.0) * SAFETY + SUBMIT_MARGIN_S
            if max(self._chain_now, time.time()) + need > r.deadline:
                return "no time left before the deadline for another attempt"
        return None

    def _late(self, r: MarketJobRow) -> str | None:
        """Why the running job can no longer make its deadline, judged from its progress rate."""
        if r.deadline is None or r.job_id not in self._progress:
            return None
        rj = self.scheduler.running().get(self.queue_id(r.job_id))
        if rj is None or rj.paused:
            return None  # not judged while paused (the rate would include the pause)
        (t0, f0), (t1, f1) = self._progress[r.job_id]
        if t1 - t0 < MIN_OBSERVE_S or f1 <= f0:
            return None
        rate = (f1 - f0) / (t1 - t0)
        # the deadline is chain time: count from the chain's clock where it runs ahead of ours
        finish = max(self._chain_now, time.time()) + (1.0 - f1) / rate + SUBMIT_MARGIN_S
        if finish <= r.deadline:
            return None
        return (f"expected to finish at {_hms(finish)} ({f1 * 100:.0f}% done at {rate * 100:.2f}%/s), "
                f"after the deadline {_hms(r.deadline)}")

    def _give_up(self, r: MarketJobRow, reason: str) -> None:
        self.scheduler.cancel(self.queue_id(r.job_id))
        self.db.set(r.job_id, state="failed", reason=reason)
        log.warning("market job %s given up: %s", r.job_id, reason)

    def _settle(self, r: MarketJobRow) -> None:
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        m = self.market
        if r.dirty or r.submitted_at is None:
            j = m.job(r.job_id)
            self.db.set(r.job_id, submitted_at=j.submitted_at, review_window_s=j.review_window_s)
            if j.status in (JobStatus.ACCEPTED, JobStatus.RELEASED):  # stays dirty until the payment is noted
                name = "JobAccepted" if j.status == JobStatus.ACCEPTED else "PaymentReleased"
                evs = [e for e in self.indexer().job_events(r.job_id) if e.name == name]
                if not evs:  # the event came after this pass's sync: note it with its transaction next pass
                    return
                self._paid(r, evs[-1].tx_hash, j.reward_wei)
                return
            if j.status == JobStatus.REJECTED:
                self.db.set(r.job_id, state="rejected", reason="the buyer rejected the result", dirty=0)
                return
            if j.status != JobStatus.SUBMITTED:
                self.db.set(r.job_id, state="failed", reason=f"the job is {j.status.name.lower()} on the chain",
                            dirty=0)
                return
            self.db.set(r.job_id, dirty=0)
            r = self.row(r.job_id)
        closes = int(r.submitted_at) + int(r.review_window_s or 0)
        if self._chain_now <= closes and time.time() > closes + 1 and self._nudge_chain_time():
            self._chain_now = m.chain.latest_timestamp()
        if self._chain_now > closes:
            try:
                res = m.release(self.account, r.job_id)
            except ContractRevert as e:  # accepted or rejected meanwhile: read it on the next pass
                log.info("market job %s: release refused (%s)", r.job_id, e)
                self.db.mark_dirty(r.job_id)
                return
            self._paid(r, res.tx_hash, r.reward_wei)

    def _nudge_chain_time(self) -> bool:
        """Make a block stamped now on a chain that mines only for transactions (the embedded
        chain; a local anvil/hardhat dev node, chain id 31337), so chain time reaches a review
        window's end; public networks make their own blocks. True if a block was made."""
        if self._mine_empty is not None:
            self._mine_empty()
            return True
        if self.market.chain.chain_id != DEV_CHAIN_ID:
            return False
        resp = self.market.chain.read(lambda: self.market.chain.w3.provider.make_request("evm_mine", []))
        return "error" not in resp

    def _paid(self, r: MarketJobRow, tx_hash: str, amount_wei: int) -> None:
        tx = tx_hash if str(tx_hash).startswith("0x") else "0x" + str(tx_hash)
        self.ledger.record_payment(r.job_id, tx, amount_wei, timestamp=time.time(), device_key=r.device_key)
        self.db.set(r.job_id, state="paid", tx_paid=tx, paid_at=time.time(), dirty=0)
        log.info("market job %s paid: %s (%s)", r.job_id, ntk_text(amount_wei), tx)

    # ---- status --------------------------------------------------------------------------
    def device_lines(self) -> list[dict[str, Any]]:
        """One status record per device: device, mode, active, throttled, job (market id),
        kind, progress, temp_c, earned_today_wei, floor."""
        running = {rj_id: rj.device_id for rj_id, rj in self.scheduler.running().items()}
        day = self.ledger.day_of(time.time())
        out = []
        for s in self._states:
            jid = next((q for q, d in running.items() if d == s.info.key), None)
            mid = self.market_id(jid)
            t = getattr(s.telemetry, "temp_c", None) if s.telemetry else None
            try:
                today = sum(p.amount_wei for p in self.ledger.payments(device_key=s.info.key, since_day=day))
            except Exception:
                today = 0
            r = self.row(mid) if mid else None
            out.append({"device": s.info.id, "key": s.info.key, "mode": s.mode, "active": s.active,
                        "throttled": s.throttled, "job": mid, "kind": r.kind if r else None,
                        "progress": self.last_progress.get(mid) if mid else None,
                        "temp_c": t if isinstance(t, (int, float)) and not isinstance(t, bool) else None,
                        "earned_today_wei": today,
                        "floor_ntk_per_hour": self.ctx.settings.device(s.info.key).price_floor_ntk_per_hour})
        return out

    def close(self) -> None:
        try:
            self.scheduler.shutdown()
            self.queue.close()
            if self._busy is not None:
                self._save_busy(time.time())  # the auto-pricing window goes on after a restart
                self._busy = None
            self.db.close()
            if self._indexer is not None:
                try:
                    self._indexer.close()
                except Exception:  # another thread built it; the process is ending anyway
                    pass
        finally:
            self._home_lock.release_all()



def _hms(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))
