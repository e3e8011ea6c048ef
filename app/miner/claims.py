"""The claiming half of MinerService: open jobs announced by the indexer are fetched (spec and
inputs, hash-checked, into the miner's artifact store), sized and priced (app.miner.pricing), and
claimed when the best free device values them at or above its floor and they fit before their
deadline; auto-priced floors move with how booked each device was. Every decision is logged
in the miner DB (`pricing_decisions`), once per change.

A mixin of app.miner.service.MinerService (it uses that class's db, store, market, devices
and settings); same threading rule: the one thread that calls `step()`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from app.miner import pricing
from app.miner.db import FloorChangeRow, MarketJobRow, OpenJob, PricingDecision
from app.runtime import resolve_uri
from jobs.artifacts import ArtifactError
from jobs.execute import device_fits
from jobs.queue import QueueError
from jobs.spec import JobSpec, SpecError, parse_spec
from wallet.errors import ContractRevert, InsufficientFunds, RpcUnavailable

log = logging.getLogger("app.miner.service")

KINDS = frozenset(pricing.MARKET_KINDS)
"""Market job kinds this miner runs."""
SAFETY = 1.25
"""A job is claimed only if expected seconds x SAFETY (+ SUBMIT_MARGIN_S) fit before its deadline."""
SUBMIT_MARGIN_S = 30.0
"""Time kept for packing, uploading and the submit transaction."""
MIN_OBSERVE_S = 3.0
"""Progress must be watched this long before the finish is estimated from its rate."""
BUSY_SAVE_S = 30.0
"""How often the auto-pricing counts are saved (a restart loses at most this much counting)."""
MAX_FETCH_TRIES = 5
"""A spec or input that cannot be fetched is retried this many times (with backoff), then skipped."""


class _Transient(Exception):
    """A pass stopped by something that comes back by itself (RPC down, store unreachable)."""

    def __init__(self, what: str, cause: BaseException):
        super().__init__(f"{what}: {cause}")
        self.what = what
        self.cause = cause


def is_transient(e: BaseException) -> bool:
    import requests  # deferred: requests takes ~0.1 s to load

    try:
        from web3.exceptions import ProviderConnectionError
    except ImportError:  # pragma: no cover
        ProviderConnectionError = ConnectionError  # type: ignore[misc,assignment]
    return isinstance(e, (RpcUnavailable, ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                          ProviderConnectionError))


class ClaimsMixin:
    """See the module docstring."""

    # ---- specs and inputs -----------------------------------------------------------------
    def _load_spec(self, spec_sha: str, spec_uri: str):
        """The market spec as a JobSpec (fetched and checked against its hash), or raises."""
        path = self.store.fetch(spec_sha, spec_uri)
        return parse_spec(json.loads(Path(path).read_text(encoding="utf-8")))

    def _fetch_inputs(self, spec, spec_uri: str) -> dict[str, pricing.InputStats]:
        """Every input in the local store (hash-checked); its image count, for pricing."""
        out = {}
        for name, ref in spec.inputs.items():
            try:
                path = self.store.fetch(ref.sha256, resolve_uri(ref.uri, spec_uri))
            except ArtifactError as e:
                raise ArtifactError(f"input {name!r}: {e}") from None
            out[name] = pricing.count_images(path, ref.type == "dir")
        return out

    def _queue_job(self, r: MarketJobRow) -> None:
        spec = self._load_spec(r.spec_sha, r.spec_uri)
        inputs = {k: v.model_dump() | {"uri": resolve_uri(v.uri, r.spec_uri)} for k, v in spec.inputs.items()}
        spec = JobSpec.model_validate(spec.model_dump() | {"id": self.queue_id(r.job_id), "inputs": inputs})
        try:
            self.queue.add(spec)
        except QueueError:
            pass  # already queued or running (a restart between add and the state change)
        self.db.set(r.job_id, state="running")

    # ---- claiming ------------------------------------------------------------------------
    def free_slots(self) -> int:
        cap = sum(self._capacity(s) for s in self._states if s.active and not s.throttled)
        busy = sum(1 for r in self.rows(active_only=True) if r.state in ("claiming", "claimed", "running"))
        return cap - busy

    def _speed(self, s) -> pricing.DeviceSpeed:
        try:
            res = self.bench.latest(s.info.key)
        except (OSError, ValueError):
            res = None
        return pricing.speed_from_bench(res, s.info.kind)

    def quote(self, o: OpenJob, spec, stats: dict[str, pricing.InputStats]) -> PricingDecision:
        """The best device for a job: claim, or why not (below floor, too slow, no device)."""
        size = pricing.job_size(spec.kind, spec.params, stats)
        devs = {d.device_id: d for d in self._job_devices()}
        running = self._running_by_key()
        left = o.deadline - max(self._chain_now, time.time())
        best: PricingDecision | None = None
        for s in self._states:
            jd = devs.get(s.info.key)
            if not s.active or s.throttled or jd is None or not device_fits(spec.resources, jd):
                continue
            if running.get(s.info.key, 0) >= self._capacity(s):
                continue
            sec = pricing.expected_seconds(size, self._speed(s))
            per_h = pricing.ntk_per_hour(o.reward_wei, sec)
            floor = self.ctx.settings.device(s.info.key).price_floor_ntk_per_hour
            if per_h < floor:
                d = PricingDecision(time.time(), o.job_id, s.info.key, o.kind, o.reward_wei, sec, per_h, floor,
                                    "below floor", f"{per_h:.4g} NTK/h < floor {floor:g} ({size.note})")
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
            delay = min(self.backoff_cap_s, self.backoff_first_s * 2 ** o.tries)
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

    def _claim_new(self) -> None:
        me = self.account.address.lower()
        for o in self.db.open_jobs(now=time.time()):
            if self.free_slots() <= 0:
                return
            if self.row(o.job_id) is not None:
                self.db.drop_open(o.job_id)
                continue
            if o.deadline <= self._chain_now:
                self.db.drop_open(o.job_id)
                continue
            if o.kind not in KINDS:
                self._skip(o, f"kind {o.kind!r} is not run by this miner")
                continue
            if (o.buyer or "").lower() == me:
                self._skip(o, "our own job (a buyer cannot claim it)")
                continue
            try:
                spec = self._load_spec(o.spec_sha, o.spec_uri)
                if spec.kind not in pricing.MARKET_KINDS[o.kind]:
                    raise SpecError(f"spec engine {spec.kind!r} is not a {o.kind} job")
                stats = self._fetch_inputs(spec, o.spec_uri)
                d = self.quote(o, spec, stats)
            except (ArtifactError, OSError) as e:
                self._skip(o, f"cannot fetch: {e}", transient="hash mismatch" not in str(e))
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
                    continue
                self.db.delete(o.job_id)
                self._skip(o, f"claim failed: {e}")
                continue
            log.info("claimed market job %s (%s): %s", o.job_id, o.kind, d.reason)
            self.db.drop_open(o.job_id)
            self.db.set(o.job_id, state="claimed", tx_claim=res.tx_hash, claimed_at=time.time())
            self._queue_job(self.row(o.job_id))

    # ---- auto-pricing --------------------------------------------------------------------
    def _track_busy(self) -> None:
        """Count, per device offered to the market, the passes in which all its slots were busy.
        The counts are saved in the miner DB now and then (BUSY_SAVE_S), so a restart carries
        on with the same auto-pricing window instead of starting a new one."""
        if self._busy is None:
            self._busy = self._load_busy()
        running = self._running_by_key()
        now = time.time()
        for s in self._states:
            if not (s.active and not s.throttled):
                self._busy.pop(s.info.key, None)
                continue
            w = self._busy.setdefault(s.info.key, [now, 0, 0])
            w[1] += 1
            w[2] += 1 if running.get(s.info.key, 0) >= self._capacity(s) else 0
        if now - self._busy_saved_at >= BUSY_SAVE_S:
            self._save_busy(now)

    def _load_busy(self) -> dict[str, list[float]]:
        try:
            saved = json.loads(self.db.meta("busy_windows") or "{}")
            return {str(k): [float(v[0]), int(v[1]), int(v[2])] for k, v in saved.items()}
        except (ValueError, TypeError, IndexError, KeyError):  # a damaged value: start new windows
            return {}

    def _save_busy(self, now: float) -> None:
        self.db.set_meta("busy_windows", json.dumps(self._busy or {}))
        self._busy_saved_at = now

    def _auto_price(self) -> None:
        if self._busy is None:
            return
        now = time.time()
        for key, (start, passes, busy) in list(self._busy.items()):
            ds = self.ctx.settings.device(key)
            if not ds.auto_price:
                continue
            if now - start < ds.auto_price_window_s or passes == 0:
                continue
            self._busy[key] = [now, 0, 0]
            self._save_busy(now)
            ch = pricing.next_floor(ds.price_floor_ntk_per_hour, busy / passes, lo=ds.auto_price_min_ntk_per_hour,
                                    hi=ds.auto_price_max_ntk_per_hour, step=ds.auto_price_step,
                                    window_s=ds.auto_price_window_s)
            if ch is None:
                continue
            ds.price_floor_ntk_per_hour = ch.new
            self.ctx.save_settings()
            row = FloorChangeRow(time.time(), key, ch.old, ch.new, ch.reason)
            self.db.log_floor(row)
            log.info("device %s: %s", key, row.text())


def _refused_before_sending(e: BaseException) -> bool:
    """True when a claim failed before its transaction left (a revert found by the preflight,
    too little ETH or NTK for the stake): nothing can be on the chain. Anything else (RPC gone
    or a receipt timeout after sending) may have claimed the job."""
    return isinstance(e, (ContractRevert, InsufficientFunds))

