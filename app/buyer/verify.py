"""Verification of one delivered shard for BuyerService: fetch the result (hash checked),
check its card against the order, run the verify engine as a sandboxed job, then accept or
reject on the chain with the figures recorded.

`Verifier` gets everything it works with in its constructor; it runs only on the thread that
calls BuyerService.step() (see app.buyer.service).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.amounts import ntk_text
from app.buyer.book import OrderBook, OrderStatus, ShardStatus
from app.chain_clock import ChainClock
from jobs.artifacts import ArtifactError, ArtifactRefused, ArtifactStore
from jobs.cards import DatasetCard, parse_dataset_card
from jobs.queue import FINAL, JobQueue, QueueError
from jobs.render.dataset_card import card_from_tar
from jobs.sandbox import find_bwrap
from jobs.spec import JobSpec
from wallet.errors import ContractRevert, TransactionFailed

log = logging.getLogger(__name__)

VERIFY_WALL_S = 3600.0
MAX_VERIFY_RUNS = 3
"""A verify job that fails (not: finds the result bad) is run again, up to this many runs."""
VERIFY_RETRY_MARGIN_S = 60
"""Another verify run is started only while the review window has this long left."""
FETCH_GIVE_UP_S = 120
"""A result that still cannot be fetched this close to the end of its review window (chain
seconds) is rejected: the buyer never pays for what it could not check."""


@dataclass(kw_only=True, eq=False)
class Verifier:
    """Checks delivered shards and answers on the chain. `level`: the sandbox level verify jobs
    run under; `queue`: the buyer's own job queue (its scheduler runs them)."""

    level: str
    store: ArtifactStore
    market: Any
    account: Any
    queue: JobQueue
    book: OrderBook
    clock: ChainClock
    policy: Any = None
    """jobs.url_policy.UrlPolicy for the miners' result URIs (strangers'); None trusts them."""

    def start(self, o: OrderStatus, s: ShardStatus, events: list[str]) -> None:
        """Fetch the result and queue its verify job (or settle at once when a check fails)."""
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        if self.level == "strict" and find_bwrap() is None:  # our problem, not the miner's: never reject for it
            raise RuntimeError("cannot verify: the strict sandbox needs bubblewrap (install it, or set the sandbox "
                               "to basic)")
        try:
            path = self.store.fetch(s.result_sha, s.result_uri, policy=self.policy)
        except ArtifactError as e:
            if "hash mismatch" in str(e):
                self.settle(o, s, False, {"check": "result does not match its hash"},
                            f"result does not match its hash: {e}", events)
                return
            if isinstance(e, ArtifactRefused):  # refused by the input policy, over the cap: waiting cannot mend it
                self.settle(o, s, False, {"check": "the result cannot be fetched"},
                            f"the result cannot be fetched: {e}", events)
                return
            j = self.market.job(s.job_id)
            closes = (j.submitted_at or 0) + j.review_window_s
            if j.status == JobStatus.SUBMITTED and self.market.chain.latest_timestamp() + FETCH_GIVE_UP_S < closes:
                raise  # unreachable for now: try again on the next pass
            # never accepted unseen, and never left to be released unverified when the window closes
            self.settle(o, s, False, {"check": "the result could not be fetched"},
                        f"the result could not be fetched before the review window closed: {e}", events)
            return
        p = o.params
        if o.kind == "render":
            try:
                card = read_card_from_tar(path)
                problem = _card_problem(card, p, s)
            except ValueError as e:
                problem = str(e)
            if problem:
                self.settle(o, s, False, {"check": problem}, problem, events)
                return
            inputs: dict[str, Any] = {"dataset": {"sha256": s.result_sha, "type": "dir"},
                                      "scene": {"sha256": p["scene_sha"]}}
            inputs |= {f"asset-{h[:16]}": {"sha256": h} for h in p.get("assets", [])}
            kind, params = "verify-render", {"sample": min(int(p.get("verify_sample", 3)), max(1, s.count))}
        else:
            inputs = {"model": {"sha256": s.result_sha, "type": "dir"}, **p.get("holdout_inputs", {})}
            kind, params = "verify-train", {"tolerance": float(p.get("tolerance", 0.05))}
        qid = f"verify-o{o.id}-s{s.index}-j{s.job_id}"
        spec = JobSpec.model_validate({"id": qid, "kind": kind, "params": params, "inputs": inputs,
                                       "seed": secrets.randbelow(2**62),  # frames to re-render: unknown to the miner
                                       "resources": {"device": "cpu", "max_wall_s": VERIFY_WALL_S}})
        try:
            self.queue.add(spec)
        except QueueError:
            pass  # already queued (a restart between add and the state change)
        self.book.set_shard(o.id, s.index, state="verifying", verify_job=qid)
        events.append(f"order {o.id} shard {s.index}: result fetched ({s.result_sha[:12]}…), {kind} queued")

    def finish(self, o: OrderStatus, s: ShardStatus, events: list[str]) -> None:
        """The verify job ended: settle as it found (a run that died is run again while time allows)."""
        try:
            q = self.queue.get(s.verify_job)
        except QueueError:
            self.book.set_shard(o.id, s.index, state="submitted")  # lost with a reset queue: verify again
            return
        if q.state not in FINAL:
            self._give_up_if_late(o, s, events)
            return
        if q.state == "failed" and q.attempts < MAX_VERIFY_RUNS:
            # the verify run itself died (killed, out of memory, a crash): never reject an honest
            # miner for our own failure while the review window leaves time to run it again
            j = self.market.job(s.job_id)
            if self.market.chain.latest_timestamp() + VERIFY_RETRY_MARGIN_S < (j.submitted_at or 0) + j.review_window_s:
                self.queue.add(q.spec)
                events.append(f"order {o.id} shard {s.index}: verify run {q.attempts} failed ({q.reason}); "
                              "running it again")
                return
        if q.state == "succeeded" and isinstance(q.result, dict):
            r = q.result
            passed = bool(r.get("passed"))
            figures = _figures(o.kind, r)
            reason = None if passed else _reason(o.kind, r)
        else:
            passed, figures = False, {"error": q.reason or q.state}
            reason = f"verification failed: {q.reason or q.state}"
        self.settle(o, s, passed, figures, reason, events)

    def _give_up_if_late(self, o: OrderStatus, s: ShardStatus, events: list[str]) -> None:
        """A verify job still running as the review window nears its end: stop it and reject.
        A result the buyer could not check is never left to be released unverified."""
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        j = self.market.job(s.job_id)
        closes = (j.submitted_at or 0) + j.review_window_s
        if j.status != JobStatus.SUBMITTED or self.market.chain.latest_timestamp() + FETCH_GIVE_UP_S < closes:
            return
        try:
            self.queue.request_cancel(s.verify_job)
        except QueueError:
            pass
        self.settle(o, s, False, {"check": "verification did not finish in time"},
                    "the result could not be verified before the review window closed", events)

    def settle(self, o: OrderStatus, s: ShardStatus, passed: bool, figures: dict, reason: str | None,
               events: list[str]) -> None:
        """Accept or reject on the chain as the verification says (or record the miner's release)."""
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        m = self.market
        j = m.job(s.job_id)
        now = time.time()
        cols: dict[str, Any] = {"verified": int(passed), "figures": figures, "reason": reason, "settled_at": now,
                                "chain_status": j.status.name.lower()}
        fig = _fig_text(figures)
        closes = (j.submitted_at or 0) + j.review_window_s
        if j.status == JobStatus.SUBMITTED and not self.clock.past(closes):
            if passed:
                res = m.accept(self.account, j.id)
                self.book.set_shard(o.id, s.index, state="accepted", tx=res.tx_hash,
                                    **{**cols, "chain_status": "accepted"})
                events.append(f"order {o.id} shard {s.index}: verified ({fig}); accepted, {ntk_text(j.reward_wei)} "
                              f"paid to {j.miner}")
                return
            try:
                res = m.reject(self.account, j.id)
            except (ContractRevert, TransactionFailed):  # the block it landed in was past the window after all
                if m.job(j.id).status != JobStatus.SUBMITTED or m.chain.latest_timestamp() <= closes:
                    raise
            else:
                self.book.set_shard(o.id, s.index, state="rejected", tx=res.tx_hash,
                                    **{**cols, "chain_status": "rejected"})
                events.append(f"order {o.id} shard {s.index}: REJECTED ({reason}); reward back")
                return
        if j.status in (JobStatus.ACCEPTED, JobStatus.REJECTED):  # our own answer, sent before a restart
            self.book.set_shard(o.id, s.index, state=j.status.name.lower(), **cols)
            return
        # the review window closed first: the miner is (or will be) paid; keep what we learned
        self.book.set_shard(o.id, s.index, state="released", **cols)
        events.append(f"order {o.id} shard {s.index}: review window closed before the answer; "
                      f"{'verified' if passed else 'FAILED verification'} ({fig})")


def _card_problem(card: DatasetCard, p: dict, s: ShardStatus) -> str | None:
    """Why a delivered card does not match what the shard asked for (None: it matches)."""
    if card.spec_hash != p["spec_hash"]:
        return "the dataset is of another scene"
    if card.seed != p["seed"]:
        return f"the dataset was rendered with seed {card.seed}, not {p['seed']}"
    want = [[s.start, s.start + s.count]]
    have = [list(r) for r in card.frame_ranges]
    if have != want:
        return f"the dataset holds frames {have}, not {want}"
    if card.counts.images != s.count:
        return f"the dataset counts {card.counts.images} images, not {s.count}"
    return None


def _figures(kind: str, r: dict) -> dict:
    if kind == "render":
        keys = ("mode", "rgb_mad_max", "rgb_mad_mean", "box_iou_min", "exact_matches", "frames_checked", "failure_count")
        return {**{k: r.get(k) for k in keys}, "failures": list(r.get("failures") or [])[:5]}
    out = {k: r.get(k) for k in ("metric", "claimed", "measured", "tolerance", "images")}
    if isinstance(r.get("claimed"), (int, float)) and isinstance(r.get("measured"), (int, float)):
        out["gap"] = round(float(r["claimed"]) - float(r["measured"]), 4)
    return out


def _reason(kind: str, r: dict) -> str:
    if kind == "render":
        first = (r.get("failures") or ["re-rendered frames differ"])[0]
        return f"{r.get('failure_count', 1)} check(s) failed, e.g. {first}"
    return r.get("reason") or "the model does not reproduce its card's metric"


def _fig_text(f: dict) -> str:
    if "check" in f:
        return f["check"]
    if "error" in f:
        return f["error"]
    if "rgb_mad_max" in f:
        return (f"{f.get('mode')}: {f.get('exact_matches')}/{len(f.get('frames_checked') or [])} frames exact, "
                f"MAD max {f.get('rgb_mad_max')}, box IoU min {f.get('box_iou_min')}")
    return f"{f.get('metric')} claimed {f.get('claimed')}, measured {f.get('measured')}, gap {f.get('gap')}"


def read_card_from_tar(path: Path) -> DatasetCard:
    """dataset.json of a stored dataset folder (a tar), read without unpacking the rest: capped,
    decoded with depth limits and checked (jobs.render.dataset_card.card_from_tar), so a card
    nested 200,000 deep is a reason to reject, never a crash; ValueError (one line) otherwise."""
    return parse_dataset_card(card_from_tar(path))

