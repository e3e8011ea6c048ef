"""The miner's claiming: open jobs announced by the indexer are fetched (spec and inputs,
hash-checked, into the miner's artifact store), sized and priced (app.miner.pricing), and
claimed when the best free device values them at or above its floor and they fit before their
deadline; a claimed job is queued to run. Every decision is logged in the miner DB
(`pricing_decisions`), once per change.

`Claims` gets everything it works with in its constructor; it runs on the one thread that
calls MinerService.step().
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.chain_clock import ChainClock
from app.context import AppContext
from app.miner import pricing
from app.miner.db import MarketJobRow, MinerDB, OpenJob, PricingDecision
from app.miner.fleet import Fleet
from app.miner.transient import is_transient
from app.runtime import resolve_uri
from gpu.bench import BenchStore
from common.boundedfile import BoundedReadError, read_bounded
from common.safejson import SPEC_LIMITS
from jobs.artifacts import ArtifactError, ArtifactRefused, ArtifactStore
from jobs.estimate import WorkEstimate, bounded_spec
from jobs.execute import device_fits
from jobs.queue import JobQueue, QueueError
from jobs.render.spec import SceneError, SceneSpec, parse_scene_bytes
from jobs.spec import JobSpec, SpecError, load_market_spec
from jobs.url_policy import UrlPolicy
from wallet.errors import ContractRevert, InsufficientFunds

log = logging.getLogger("app.miner.service")

KINDS = frozenset(pricing.MARKET_KINDS)
"""Market job kinds this miner runs."""
SAFETY = 1.25
"""A job is claimed only if expected seconds x SAFETY (+ SUBMIT_MARGIN_S) fit before its deadline."""
SUBMIT_MARGIN_S = 30.0
"""Time kept for packing, uploading and the submit transaction."""
MAX_FETCH_TRIES = 5
"""A spec or input that cannot be fetched is retried this many times (with backoff), then skipped."""
SPEC_FETCH_S = 30.0
"""The most a spec (at most SPEC_LIMITS.max_bytes) may take to arrive: a node that never answers
holds one pass this long, not the miner's whole day."""


def _photoreal_refusal() -> str | None:
    from jobs.render.photoreal_addon import status

    ok, line = status()
    return None if ok else line


@dataclass(kw_only=True, eq=False)
class Claims:
    """See the module docstring. `queue_id(job_id)` names a market job in the job queue;
    `running()` is the scheduler's running jobs; `retry_delay_s(tries)` the backoff before a
    spec or input that could not be fetched is tried again."""

    ctx: AppContext
    db: MinerDB
    store: ArtifactStore
    market: Any
    account: Any
    queue: JobQueue
    bench: BenchStore
    fleet: Fleet
    clock: ChainClock
    queue_id: Callable[[int], str]
    running: Callable[[], Mapping[str, Any]]
    retry_delay_s: Callable[[int], float]
    policy: Callable[[], UrlPolicy] = UrlPolicy
    """What a stranger's URIs may name (app.runtime.input_policy, as the settings say now)."""
    level_refusal: Callable[[], str | None] = lambda: None
    """Why market jobs may not run under the sandbox level here (jobs.level_policy), else None:
    then nothing is claimed (a claimed job that cannot run would fail at the buyer's cost)."""
    photoreal_refusal: Callable[[], str | None] = lambda: _photoreal_refusal()
    """Why photoreal renders are not offered here (the optional engine is not installed: its
    one line, jobs.render.photoreal_addon), else None. Such jobs are refused, not skipped for
    good: the owner may install it."""

    # ---- specs and inputs -----------------------------------------------------------------
    def load_spec(self, spec_sha: str, spec_uri: str) -> JobSpec:
        """The market spec as a JobSpec (fetched under the input policy, at most
        SPEC_LIMITS.max_bytes, checked against its hash, then decoded with limits), or raises."""
        policy = self.policy().capped(max_bytes=SPEC_LIMITS.max_bytes, timeout_s=SPEC_FETCH_S)
        return load_market_spec(self.store.fetch(spec_sha, spec_uri, policy=policy))

    def _fetch_inputs(self, spec: JobSpec, spec_uri: str) -> dict[str, pricing.InputStats]:
        """Every input in the local store (fetched under the input policy, hash-checked); its
        image count, for the work estimate."""
        out = {}
        for name, ref in spec.inputs.items():
            try:
                path = self.store.fetch(ref.sha256, resolve_uri(ref.uri, spec_uri), policy=self.policy())
            except ArtifactError as e:
                raise type(e)(f"input {name!r}: {e}") from None  # ArtifactRefused stays final
            out[name] = pricing.count_images(path, ref.type == "dir")
        return out

    def _input_scene(self, spec: JobSpec) -> SceneSpec | None:
        """The scene of a render or verify-render job given as its `scene` input (already in the
        store), read capped and decoded with limits; None when the params hold it."""
        ref = spec.inputs.get("scene")
        if ref is None or spec.kind not in ("render", "verify-render"):
            return None
        try:
            return parse_scene_bytes(read_bounded(self.store.path(ref.sha256), SPEC_LIMITS.max_bytes, what="scene"))
        except (BoundedReadError, SceneError) as e:
            raise SpecError(f"input 'scene': {e}") from None

    def estimate(self, spec: JobSpec, spec_uri: str) -> WorkEstimate:
        """The job's work from its spec and fetched inputs (EstimateError, a SpecError, when it
        cannot be told or is beyond any device: a poison spec is skipped before claiming)."""
        return pricing.estimate(spec, self._fetch_inputs(spec, spec_uri), scene=self._input_scene(spec))

    def _slowest_rate(self, spec: JobSpec) -> pricing.DeviceRate:
        """The slowest rate among this rig's devices that fit the job: its time limits then hold
        on whichever device the scheduler picks."""
        devs = {d.device_id: d for d in self.fleet.job_devices()}
        speeds = [self._speed(s) for s in self.fleet.states
                  if s.info.key in devs and device_fits(spec.resources, devs[s.info.key])]
        if not speeds:
            return pricing.DEFAULT_SPEED["cpu"].rate
        return pricing.DeviceRate(min(x.render_fps for x in speeds), min(x.gflops for x in speeds),
                                  min(x.rate.path_fps for x in speeds))

    # ---- the states before a run ----------------------------------------------------------
    def confirm(self, r: MarketJobRow) -> None:
        """`claiming` (the claim was sent, its outcome unknown): the chain decides, ours or not."""
        j = self.market.job(r.job_id)
        if j.miner and j.miner.lower() == self.account.address.lower():
            self.db.set(r.job_id, state="claimed", dirty=0, deadline=j.deadline, buyer=j.buyer)
        else:
            self.db.delete(r.job_id)

    def start(self, r: MarketJobRow) -> None:
        """`claimed`: queue the job to run, unless its deadline passed first."""
        if r.deadline is not None and self.clock.now >= r.deadline:
            self.db.set(r.job_id, state="failed", reason="the deadline passed before the job could start")
            return
        self._queue_job(r)

    def _queue_job(self, r: MarketJobRow) -> None:
        spec = self.load_spec(r.spec_sha, r.spec_uri)
        inputs = {k: v.model_dump() | {"uri": resolve_uri(v.uri, r.spec_uri)} for k, v in spec.inputs.items()}
        spec = JobSpec.model_validate(spec.model_dump(exclude_unset=True) | {"id": self.queue_id(r.job_id), "inputs": inputs})
        spec = self._bounded(spec, r.spec_uri)
        try:
            self.queue.add(spec)
        except QueueError:
            pass  # already queued or running (a restart between add and the state change)
        self.db.set(r.job_id, state="running")

    def _bounded(self, spec: JobSpec, spec_uri: str) -> JobSpec:
        """`spec` as the miner runs it: its wall-clock limit from the work estimate (not the
        order's deadline) and a no-progress limit (resources.max_silent_s), both on the slowest
        device that fits, so a poisoned job ends long before the deadline."""
        try:
            est = self.estimate(spec, spec_uri)
        except (SpecError, ArtifactError, ValueError) as e:  # told at claim time; a restart may not tell it
            log.warning("market job %s: no work estimate (%s); its own limits apply", spec.id, e)
            return spec
        rate = self._slowest_rate(spec)
        spec = bounded_spec(spec, est, rate)
        silent = min(est.no_progress_s(rate), spec.resources.max_wall_s)
        if spec.resources.max_silent_s is None or silent < spec.resources.max_silent_s:
            spec = spec.model_copy(update={"resources": spec.resources.model_copy(update={"max_silent_s": silent})})
        return spec

    # ---- claiming ------------------------------------------------------------------------
    def free_slots(self) -> int:
        busy = sum(1 for r in self.db.rows(active_only=True) if r.state in ("claiming", "claimed", "running"))
        return self.fleet.free_slots(busy)

    def _speed(self, s) -> pricing.DeviceSpeed:
        try:
            res = self.bench.latest(s.info.key)
        except (OSError, ValueError):
            res = None
        return pricing.speed_from_bench(res, s.info.kind)

    def quote(self, o: OpenJob, spec: JobSpec, size: WorkEstimate) -> PricingDecision:
        """The best device for a job: claim, or why not (below floor, too slow, no device)."""
        devs = {d.device_id: d for d in self.fleet.job_devices()}
        running = self.fleet.running_by_key(self.running())
        left = o.deadline - max(self.clock.now, time.time())
        best: PricingDecision | None = None
        for s in self.fleet.states:
            jd = devs.get(s.info.key)
            if not self.fleet.may_claim(s) or jd is None or not device_fits(spec.resources, jd, spec.kind):
                continue
            if running.get(s.info.key, 0) >= self.fleet.capacity(s):
                continue
            sec = size.seconds(self._speed(s).rate)
            per_h = pricing.ntk_per_hour(o.reward_wei, sec)
            floor = self.ctx.settings.device(s.info.key).price_floor_ntk_per_hour
            if per_h < floor:
                d = PricingDecision(time.time(), o.job_id, s.info.key, o.kind, o.reward_wei, sec, per_h, floor,
                                    "below floor", f"{per_h:.4g} NTK/h < floor {floor:g} ({size.note})")
            elif sec > spec.resources.max_wall_s:  # the job's own limit would stop it on this device
                d = PricingDecision(time.time(), o.job_id, s.info.key, o.kind, o.reward_wei, sec, per_h, floor,
                                    "too slow", f"expected {sec:.0f} s, over the job's own limit of "
                                                f"{spec.resources.max_wall_s:.0f} s ({size.note})")
            elif sec * SAFETY + SUBMIT_MARGIN_S > left:
                d = PricingDecision(time.time(), o.job_id, s.info.key, o.kind, o.reward_wei, sec, per_h, floor,
                                    "too slow", f"expected {sec:.0f} s, {left:.0f} s left before the deadline")
            else:
                d = PricingDecision(time.time(), o.job_id, s.info.key, o.kind, o.reward_wei, sec, per_h, floor,
                                    "claim", f"{per_h:.4g} NTK/h >= floor {floor:g} ({size.note})")
            rank = (d.decision == "claim", d.decision == "too slow", per_h)
            if best is None or rank > (best.decision == "claim", best.decision == "too slow", best.ntk_per_hour):
                best = d
        return best or PricingDecision(time.time(), o.job_id, None, o.kind, o.reward_wei, None, None, None,
                                       "no device", "no free mining device fits the job")

    def _skip(self, o: OpenJob, reason: str, *, transient: bool = False) -> None:
        if transient and o.tries + 1 < MAX_FETCH_TRIES:
            delay = self.retry_delay_s(o.tries)
            self.db.retry_open(o.job_id, o.tries + 1, time.time() + delay)
            self._decide(o, PricingDecision(time.time(), o.job_id, None, o.kind, o.reward_wei, None, None, None,
                                            "retry", f"{reason}; retry in {delay:.0f} s"), force=True)
            return
        self.db.skip_open(o.job_id, reason)
        self._decide(o, PricingDecision(time.time(), o.job_id, None, o.kind, o.reward_wei, None, None, None,
                                        "skipped", reason), force=True)
        log.info("market job %s skipped: %s", o.job_id, reason)

    def _decide(self, o: OpenJob, d: PricingDecision, *, force: bool = False) -> None:
        """Log a decision once per change (a job below the floor is not logged every pass)."""
        key = f"{d.decision}:{d.device_key}:{d.floor}"
        if force or o.last_decision != key:
            self.db.log_pricing(d)
            self.db.set_decision(o.job_id, key)

    def claim_new(self) -> None:
        """Claim the open jobs worth it while a device has a free slot (one pass)."""
        me = self.account.address.lower()
        for o in self.db.open_jobs(now=time.time()):
            if self.free_slots() <= 0:
                return
            if self.db.row(o.job_id) is not None or o.deadline <= self.clock.now:
                self.db.drop_open(o.job_id)
                continue
            if o.kind not in KINDS:
                self._skip(o, f"kind {o.kind!r} is not run by this miner")
                continue
            if (o.buyer or "").lower() == me:
                self._skip(o, "our own job (a buyer cannot claim it)")
                continue
            refused = self.level_refusal()
            if refused:  # not skipped for good: the user may install bubblewrap or allow basic
                self._decide(o, PricingDecision(time.time(), o.job_id, None, o.kind, o.reward_wei, None, None, None,
                                                "refused", refused))
                continue
            try:
                spec = self.load_spec(o.spec_sha, o.spec_uri)
                if spec.kind not in pricing.MARKET_KINDS[o.kind]:
                    raise SpecError(f"spec engine {spec.kind!r} is not a {o.kind} job")
                est = self.estimate(spec, o.spec_uri)
                no_photo = self.photoreal_refusal() if est.path_samples > 0 else None
                if no_photo:
                    self._decide(o, PricingDecision(time.time(), o.job_id, None, o.kind, o.reward_wei, None, None, None,
                                                    "refused", no_photo))
                    continue
                d = self.quote(o, spec, est)
            except (ArtifactError, OSError) as e:  # refused or not the hash: skipped at once; away: retried
                self._skip(o, f"cannot fetch: {e}", transient=not isinstance(e, ArtifactRefused))
                continue
            except (SpecError, ValueError) as e:  # PricingError is a ValueError
                self._skip(o, f"unusable spec: {e}")
                continue
            except Exception as e:  # whatever a hostile spec or input trips: skip it, never stop the pass
                if is_transient(e):
                    raise
                self._skip(o, f"unusable job: {type(e).__name__}: {e}")
                continue
            self._decide(o, d)
            if d.decision != "claim":
                continue  # may pass later, when a floor, a device or the load changes
            self._claim(o, spec, d)

    def _claim(self, o: OpenJob, spec: JobSpec, d: PricingDecision) -> None:
        self.db.insert_claiming(o, engine=spec.kind, expected_s=d.expected_s, device_key=d.device_key)
        try:
            res = self.market.claim(self.account, o.job_id)
        except Exception as e:
            if not _refused_before_sending(e):
                # the claim may be on the chain (sent, then the reply was lost): the row stays
                # `claiming` and the next pass reads the chain (adopt it, or drop the row)
                log.warning("market job %s: claim sent, outcome unknown (%s); the chain decides", o.job_id, e)
                if is_transient(e):
                    raise
                return
            self.db.delete(o.job_id)
            self._skip(o, f"claim failed: {e}")
            return
        log.info("claimed market job %s (%s): %s", o.job_id, o.kind, d.reason)
        self.db.drop_open(o.job_id)
        self.db.set(o.job_id, state="claimed", tx_claim=res.tx_hash, claimed_at=time.time())
        self._queue_job(self.db.row(o.job_id))


def _refused_before_sending(e: BaseException) -> bool:
    """True when a claim failed before its transaction left (a revert found by the preflight,
    too little ETH or NTK for the stake): nothing can be on the chain. Anything else (RPC gone
    or a receipt timeout after sending) may have claimed the job."""
    return isinstance(e, (ContractRevert, InsufficientFunds))

