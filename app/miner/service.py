"""MinerService: the miner's side of the job market, each market job through
claim -> run -> upload -> submit -> payment.

Each `step()` is one pass: poll the devices (and feed their power to the earnings ledger),
read the market events the indexer stored since the last pass (a cursor), advance every
tracked job by what those events and the job queue say, claim open jobs the devices can take
at or above their price floor, move auto-priced floors, start queued jobs.

The service composes collaborators that each get their dependencies in their constructor:
`Fleet` (the devices as the miner sees them), `Claims` (open jobs -> claimed -> queued, see
app.miner.claims), `Submission` (running -> uploaded -> submitted), `Release` (submitted ->
paid), `AutoPricing` (floors that follow demand), `RunProgress` (how far each run got) and a
`ChainClock` (chain time, moved on chains that mine only for transactions). `advance_by_state` is the
table from a job's state to the step that moves it on.

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
own, so job ids that start again at 1 never meet the old ones. Chain state of a tracked job is
read only when an event says it changed (or it waits in `claiming`/`uploaded`, one read each).
A pass that hits a transient failure (RPC down) keeps every state and the next pass waits a
backoff (doubling from `backoff_first_s` up to `backoff_cap_s`, reset by a good pass);
`status_text()` says so.

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
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from app.chain_clock import ChainClock
from app.context import AppContext
from app.home_lock import HomeLock
from app.miner.autoprice import AutoPricing
from app.miner.claims import KINDS, Claims
from app.miner import pricing
from app.miner.db import (FINAL, STATES, FloorChangeRow, MarketJobRow, MinerDB, MinerJobView, OpenJob,
                          PricingDecision, deployment_db)
from app.miner.fleet import Fleet
from app.miner.progress import RunProgress
from app.miner.release import Release
from app.miner.submission import MAX_RUN_ATTEMPTS, Submission
from app.miner.transient import Transient, is_transient
from app.runtime import local_market, open_queue, runtime_config
from gpu.bench import BenchStore
from jobs.queue import APP_STOPPED
from jobs.scheduler import Scheduler
from wallet.indexer import for_deployment

log = logging.getLogger(__name__)

__all__ = ["MinerService", "KINDS", "MAX_RUN_ATTEMPTS", "MarketJobRow", "MinerJobView", "PricingDecision",
           "FloorChangeRow", "STATES", "FINAL"]

_JOB_EVENTS = ("JobPosted", "JobClaimed", "ResultSubmitted", "JobAccepted", "JobRejected", "PaymentReleased",
               "JobRefunded")


def work_text(line: dict[str, Any]) -> str | None:
    """What a `device_lines` record says its device runs, for people (the agent's status line,
    the GUI's device card): "job 7 render", "order p2p:3 shard 1 render 5 NTK running", or None."""
    from app.amounts import ntk_text

    o = line.get("order")
    if o:
        reward = f" {ntk_text(int(o['reward_wei']))}" if o.get("reward_wei") is not None else ""
        return f"order {o['ref']} shard {o['shard']} {o['kind']}{reward} {o['stage']}"
    if line.get("job") is not None:
        return f"job {line['job']} {line.get('kind') or ''}".rstrip()
    return None


class MinerService:
    """See the module docstring.

    market: wallet.market.MarketClient; account: the miner's signer (LocalAccount); devices:
    `poll() -> list[DeviceState]` (app.devices.DeviceService); ledger: app.earnings.Ledger;
    indexer: a wallet.indexer.Indexer of the market (default: one in data_dir, built on the
    first step, in the stepping thread); earnings: app.earnings.EarningsService (device power
    recorded each pass) or None; bench: gpu.bench.BenchStore (default: the app's).
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
        self._market = market
        self.account = account
        self._ledger = ledger
        self._indexer = indexer
        self.queue = open_queue(ctx)
        self.cfg = runtime_config(ctx, sandbox=sandbox, local_chain=local_market(market.chain))
        self.cfg.is_market_job = lambda qid: self.market_id(qid) is not None  # never under basic unless allowed
        self.store = self.cfg.store
        self.namespace = f"{market.chain.chain_id}-{market.deployment.job_market[2:10].lower()}"
        self._qprefix = f"market-{self.namespace}-"
        self.db = MinerDB(db_path or deployment_db(ctx.paths.data_dir, self.namespace))
        self.backoff_first_s, self.backoff_cap_s = backoff_first_s, backoff_cap_s
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._waiting_on: str | None = None
        self.clock = ChainClock(market.chain)
        self.progress = RunProgress()
        self.queue_progress = RunProgress()
        """Progress of the other jobs the scheduler runs (order-market shards), by queue id."""
        self.work_sources: list[Any] = []
        """Who else puts jobs in this queue (app.orders.OrderMinerRunner): each answers
        `queue_work(queue_id)` with a view of the work (`.as_dict()`), or None."""
        self.fleet = Fleet(ctx, devices, earnings)
        self.scheduler = Scheduler(self.queue, self.cfg, self.fleet.job_devices, self._on_event)
        self.claims = Claims(ctx=ctx, db=self.db, store=self.store, market=market, account=account, queue=self.queue,
                             bench=bench if bench is not None else BenchStore(ctx.paths.bench_file), fleet=self.fleet,
                             clock=self.clock, queue_id=self.queue_id, running=self.scheduler.running,
                             retry_delay_s=lambda tries: min(self.backoff_cap_s, self.backoff_first_s * 2 ** tries),
                             policy=lambda: self.cfg.url_policy, level_refusal=self._level_refusal)
        self.submission = Submission(db=self.db, queue=self.queue, store=self.store, market=market, account=account,
                                     ledger=ledger, scheduler=self.scheduler, fleet=self.fleet, clock=self.clock,
                                     progress=self.progress, queue_id=self.queue_id)
        self.release = Release(db=self.db, market=market, account=account, ledger=ledger, clock=self.clock,
                               indexer=self.indexer)
        self.autoprice = AutoPricing(ctx, self.db, self.fleet, self.scheduler.running)
        self.advance_by_state: dict[str, Callable[[MarketJobRow], None]] = {
            "claiming": self.claims.confirm,          # the claim was sent: the chain says whose it is
            "claimed": self.claims.start,             # queue it to run (unless its deadline passed)
            "running": self.submission.advance_running,
            "uploaded": self.submission.submit,
            "submitted": self.release.settle,
        }
        """State -> the step that moves a job in it on (final states have none)."""
        self.scheduler.recover()

    # ---- dependencies that may be replaced ------------------------------------------------
    @property
    def market(self):
        """The market client (wallet.market.MarketClient); replacing it (a new connection to the
        node) reaches every collaborator."""
        return self._market

    @market.setter
    def market(self, market) -> None:
        self._market = self.claims.market = self.submission.market = self.release.market = market

    @property
    def ledger(self):
        """The earnings ledger payments are recorded in; replacing it reaches every collaborator."""
        return self._ledger

    @ledger.setter
    def ledger(self, ledger) -> None:
        self._ledger = self.submission.ledger = self.release.ledger = ledger

    # ---- views (any thread) --------------------------------------------------------------
    def rows(self, *, active_only: bool = False) -> list[MarketJobRow]:
        return self.db.rows(active_only=active_only)

    def row(self, job_id: int) -> MarketJobRow | None:
        return self.db.row(job_id)

    @property
    def last_progress(self) -> dict[int, float]:
        """Market job id -> the latest fraction done (0..1) of its run."""
        return self.progress.last

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

    def sandbox_line(self) -> str:
        """The sandbox level and what it means for market jobs, e.g. "Sandbox: strict" or
        "Sandbox: basic (market jobs refused)" (jobs.level_policy.market_line)."""
        from jobs.level_policy import market_line
        from jobs.sandbox import level_report

        return market_line(self.cfg.level, available=level_report(self.cfg.level).available,
                           allow_market_jobs_basic=self.cfg.allow_market_jobs_basic)

    def _level_refusal(self) -> str | None:
        from jobs.level_policy import refusal

        return refusal(self.cfg.level, market_job=True, carries_code=False,
                       allow_market_jobs_basic=self.cfg.allow_market_jobs_basic)

    def job_settings_changed(self) -> None:
        """Take the job settings that may change while mining: market jobs under basic, and the
        input policy (trusted hosts, the shared folder). Call it from the stepping thread."""
        fresh = runtime_config(self.ctx, sandbox=self.cfg.level, local_chain=local_market(self.market.chain))
        self.cfg.allow_market_jobs_basic = fresh.allow_market_jobs_basic
        self.cfg.url_policy = fresh.url_policy

    @property
    def backoff_s(self) -> float:
        return self._backoff_s

    def queue_id(self, job_id: int) -> str:
        """The job-queue id of market job `job_id` of this deployment."""
        return f"{self._qprefix}{job_id}"

    def market_id(self, queue_id: str | None) -> int | None:
        """The market job id behind a queue id of this deployment, else None."""
        if not queue_id or not queue_id.startswith(self._qprefix):
            return None
        return int(queue_id[len(self._qprefix):])

    def add_work_source(self, source: Any) -> None:
        """Another miner whose jobs run in this queue (an order market's): its work is named in
        `device_lines` and `queue_work`, and its jobs' progress is kept."""
        self.work_sources.append(source)

    def queue_work(self, queue_id: str | None) -> Any:
        """The other market's view of queue job `queue_id` (see `work_sources`), else None."""
        for src in self.work_sources:
            try:
                w = src.queue_work(queue_id)
            except Exception:  # a view must never stop a pass
                log.debug("queue_work(%s) failed", queue_id, exc_info=True)
                continue
            if w is not None:
                return w
        return None

    def expected_left_s(self, queue_id: str, now: float | None = None) -> float | None:
        """Seconds a running job still needs, from its progress rate; None if unknown."""
        job_id = self.market_id(queue_id)
        if job_id is None:
            return self.queue_progress.expected_left_s(queue_id, now)
        return self.progress.expected_left_s(job_id, now)

    def _on_event(self, queue_id: str, msg: dict[str, Any]) -> None:
        self.fleet.job_event(queue_id, msg)  # progress tells the watchdog the job is alive
        if msg.get("type") != "progress":
            return
        job_id = self.market_id(queue_id)
        now = time.time()
        if job_id is None:
            self.queue_progress.note(queue_id, float(msg.get("fraction") or 0.0), now)  # type: ignore[arg-type]
            return
        self.progress.note(job_id, float(msg.get("fraction") or 0.0), now)
        self.db.set_first_progress(job_id, now)

    def poll_devices(self) -> list:
        return self.fleet.poll()

    # ---- the loop ------------------------------------------------------------------------
    def quote_spec(self, job_id: int, buyer: str | None, kind: str, reward_wei: int, deadline: int, spec, *,
                   images: int | None = None) -> str | None:
        """Whether a free device takes work `spec` (a JobSpec) for `reward_wei` before `deadline`
        at its price floor: None, else the decision and its reason in one line (an order's shard
        is priced as a job is; `images`: the data of a train shard, before it is fetched). *(chain)*"""
        try:
            stats = {"data": pricing.InputStats(images, True)} if images else None
            size = pricing.estimate(spec, stats)
        except (ValueError, pricing.PricingError) as e:
            return f"its work cannot be told ({e})"
        d = self.claims.quote(OpenJob(job_id, buyer, kind, reward_wei, deadline, "", "", None, 0, 0.0, None), spec, size)
        return None if d.decision == "claim" else f"{d.decision}: {d.reason}"

    def step(self, *, claim: bool = True, start: bool = True) -> None:
        """One pass (see the module docstring); `claim=False` advances without claiming;
        `start=False` leaves the scheduler alone (no queued job starts: a clean stop).
        Blocking (chain calls and transactions). Never raises for transient failures: they
        set the backoff and `status_text()`."""
        self.fleet.poll()
        for qid, reason in self.fleet.jobs_to_fail(self.scheduler.running()):
            self.fail_job(qid, reason)
        if time.monotonic() >= self._retry_at:
            try:
                self._chain_pass(claim)
            except Exception as e:
                if not (isinstance(e, Transient) or is_transient(e)):
                    raise
                if isinstance(e, Transient):  # its text already starts with what it waits on
                    self._set_backoff(e.what, e.cause)
                else:
                    self._set_backoff("RPC", e)
            else:
                if self._waiting_on is not None:
                    log.info("%s is back", self._waiting_on)
                self._backoff_s, self._retry_at, self._waiting_on = 0.0, 0.0, None
        self.autoprice.track()
        if start:
            self.scheduler.tick()

    def _set_backoff(self, what: str, e: BaseException) -> None:
        self._backoff_s = min(self.backoff_cap_s, self._backoff_s * 2 if self._backoff_s else self.backoff_first_s)
        self._retry_at = time.monotonic() + self._backoff_s
        self._waiting_on = what
        log.warning("miner pass stopped (%s: %s); retry in %.0f s", what, e, self._backoff_s)

    def _chain_pass(self, claim: bool) -> None:
        self.clock.refresh()
        self._read_events()
        held: Transient | None = None
        for r in self.rows(active_only=True):
            for _ in range(len(STATES)):  # as far as it can go now (running -> uploaded -> submitted...)
                try:
                    self._advance(r)
                except Transient as e:  # this job's upload: the other jobs (their payments) go on
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
            self.claims.claim_new()
        self.autoprice.apply()

    def _advance(self, r: MarketJobRow) -> None:
        """One step of tracked job `r`, by its state (advance_by_state)."""
        step = self.advance_by_state.get(r.state)
        if step is not None:
            step(r)

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

    def fail_job(self, queue_id: str, reason: str) -> bool:
        """Stop one running job now as failed with `reason` (the watchdog's hook: its GPU is lost
        or hung). Its market job stays `running`: the next pass runs it again on another device
        while attempts and the deadline allow. False if it was not running."""
        failed = self.scheduler.fail(queue_id, reason)
        if failed:
            log.warning("job %s failed by the watchdog: %s", queue_id, reason)
        return failed

    def pause_job(self, queue_id: str) -> None:
        """Stop one running job now; it is requeued (its market job stays `running`)."""
        rj = self.scheduler.running().get(queue_id)
        if rj is not None:
            rj.handle.cancel(APP_STOPPED)

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
            path = self.ctx.paths.data_dir / f"miner-index-{self.namespace}.sqlite"
            self._indexer = for_deployment(self.market.chain, path, self.market.deployment)
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

    # ---- status --------------------------------------------------------------------------
    def device_lines(self) -> list[dict[str, Any]]:
        """One status record per device: device, mode, active, throttled, job (market id),
        order (the order-market shard it runs: `app.orders.rig.ShardView.as_dict()`, else None), kind,
        progress, temp_c, earned_today_wei, floor."""
        running = {rj_id: rj.device_id for rj_id, rj in self.scheduler.running().items()}
        day = self.ledger.day_of(time.time())
        out = []
        for s in self.fleet.states:
            jid = next((q for q, d in running.items() if d == s.info.key), None)
            mid = self.market_id(jid)
            t = getattr(s.telemetry, "temp_c", None) if s.telemetry else None
            try:
                today = sum(p.amount_wei for p in self.ledger.payments(device_key=s.info.key, since_day=day))
            except Exception:
                today = 0
            r = self.row(mid) if mid else None
            other = self.queue_work(jid) if jid is not None and mid is None else None
            order = other.as_dict() if other is not None else None
            progress = self.last_progress.get(mid) if mid else (self.queue_progress.last.get(jid) if jid else None)
            out.append({"device": s.info.id, "key": s.info.key, "mode": s.mode, "active": s.active,
                        "throttled": s.throttled, "job": mid, "order": order,
                        "kind": r.kind if r else (order["kind"] if order else None),
                        "progress": progress,
                        "temp_c": t if isinstance(t, (int, float)) and not isinstance(t, bool) else None,
                        "earned_today_wei": today,
                        "floor_ntk_per_hour": self.ctx.settings.device(s.info.key).price_floor_ntk_per_hour})
        return out

    def close(self) -> None:
        try:
            self.scheduler.shutdown()
            self.queue.close()
            self.autoprice.close()  # the auto-pricing window goes on after a restart
            self.db.close()
            if self._indexer is not None:
                try:
                    self._indexer.close()
                except Exception:  # another thread built it; the process is ending anyway
                    pass
        finally:
            self._home_lock.release_all()
