"""BuyerService: the buyer's side of the job market. Posts render orders (as N shard jobs)
and train orders on rendered data, verifies every result in a sandboxed worker before
paying, merges verified shards into one dataset, and keeps an order book that survives
restarts (app.buyer.book, `<data>/orders-<chain_id>.sqlite`).

Public interface (stable; the GUI's Orders view uses it):
  BuyerService(ctx, market, account, *, sandbox=None, store=None)
      market: wallet.market.MarketClient; account: the buyer's signer (None: read-only).
  post_render(scene, *, count, shards, reward_each_wei, deadline_s, review_window_s,
              seed=None, size=None, assets=(), name=None, verify_sample=3) -> OrderStatus
  post_train(data_orders, *, train_params, reward_wei, deadline_s, review_window_s,
             holdout_order=None, tolerance=0.05, name=None) -> OrderStatus
      Recorded at once; posted by step() when every data order is done (verified, merged).
  step() -> list[str]      one pass: chain state, fetch + verify results, accept/reject,
                           refund overdue shards, merge, post waiting train orders; returns
                           one line per thing that happened.
  repost(order_id) -> OrderStatus   post rejected/refunded shards again (new market jobs).
  orders() -> list[OrderStatus]; order(order_id) -> OrderStatus   (SQLite reads only)
  fetch(order_id, dest) -> Path     copy the merged dataset / the model folder to dest.
  close()
OrderStatus / ShardStatus are frozen dataclasses (app.buyer.book): states, per-shard chain
status, result hash/URI, verification figures (render: rgb_mad_max, box_iou_min, mode;
train: metric, claimed, measured, gap), `progress` (settled shards / shards).

Specs and assets go into the artifact store and are published where miners fetch them: the
store's remote (`<remote>/<sha256>`) when it has one, else file:// URIs of the local store
(miners on this machine or a shared folder). Each shard's spec is a JobSpec JSON file whose
sha256 is the market job's specHash. Verification runs the `verify-render` / `verify-train`
engines as real jobs (own queue `<data>/buyer-jobs.sqlite`, work in `<data>/verify-jobs`)
under the configured sandbox, on the CPU device, with a seed the miner cannot know. A train
order holds out one verified data shard (the last shard of its last data order, or every
shard of `holdout_order`) and trains on the rest; the model must reproduce its card's
metric on the held-out data within `tolerance`.

One process at a time works a network's orders: step() and the posting calls hold
`<data>/orders-<chain_id>.lock` (app.home_lock); while another process (the app, `kminer
order watch`) holds it, step() skips its pass and posting waits, then fails in one line, so an
order is never posted twice.

Threading: one thread calls post_*, step, repost and close (the chain client is single-
thread; in the GUI that is the "chain" runner). Verify jobs run in their own threads and
processes (jobs.scheduler); orders()/order() may be called from any thread. Money is integer
NTK wei; chain times are block timestamps, durations are seconds.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.amounts import ntk_text
from app.buyer.book import OrderBook, OrderStatus, ShardStatus
from app.buyer.verify import Verifier
from app.chain_clock import ChainClock
from app.context import AppContext
from app.home_lock import HomeBusy, HomeLock
from app.runtime import artifact_uri, local_market, runtime_config
from common.device_id import DeviceId
from common.fsutil import sha256_file
from jobs.cards import parse_dataset_card
from jobs.execute import Device
from jobs.queue import JobQueue
from jobs.render.spec import SceneError, SceneSpec, load_scene, parse_scene, with_outputs
from jobs.scheduler import Scheduler
from jobs.spec import SpecError, parse_spec
from jobs.train import BUYER_PARAMS

log = logging.getLogger(__name__)

MAX_WALL_S = 7 * 86400
TRAIN_KEYS = BUYER_PARAMS
"""TrainConfig fields a buyer may set (device, world size and the rest are the miner's)."""
POST_WAIT_S = 30.0
"""How long posting waits for another process's pass over the same orders."""


class BuyerError(ValueError):
    """An order that cannot be posted as asked; one line that says what to change."""


class BuyerService:
    """See the module docstring."""

    def __init__(self, ctx: AppContext, market, account=None, *, sandbox: str | None = None, store=None):
        self.ctx = ctx
        self._market = market
        self.account = account
        chain_id = market.chain.chain_id
        self.book = OrderBook(ctx.paths.data_dir / f"orders-{chain_id}.sqlite")
        self._orders_lock = HomeLock(ctx.paths.data_dir / f"orders-{chain_id}.lock",
                                     "another Knowledge Miner process (the app or `kminer order watch`) is handling "
                                     "this network's orders with this home; try again when it stops")
        self._skipping = False
        self.orders_dir = ctx.paths.data_dir / "orders" / str(chain_id)
        cfg = runtime_config(ctx, sandbox=sandbox, local_chain=local_market(market.chain))
        cfg = replace(cfg, jobs_dir=ctx.paths.data_dir / "verify-jobs", **({"store": store} if store else {}))
        self.cfg = cfg
        self.store = cfg.store
        self.queue = JobQueue(ctx.paths.data_dir / "buyer-jobs.sqlite")
        self.scheduler = Scheduler(self.queue, cfg, lambda: [Device.of(DeviceId.cpu(), slots=1)])
        self.scheduler.recover()
        self.clock = ChainClock(market.chain)
        self.verifier = Verifier(level=cfg.level, store=self.store, market=market, account=account, queue=self.queue,
                                 book=self.book, clock=self.clock, policy=cfg.url_policy)
        self.step_by_order_state = {
            "waiting": self._maybe_post_train,   # a train order: post it once its data is verified
            "posting": self._recover_posting,    # a post cut short (crash): adopt what the chain has
            "open": self._advance_shards,
            "stalled": self._advance_shards,
            "merging": self._finish,
        }
        """Order state -> the step that moves an order in it on ("done" and "failed" have none)."""
        self.step_by_shard_state = {
            "open": self._follow_chain,          # claimed, submitted, refunded? as the chain says
            "claimed": self._follow_chain,
            "submitted": self.verifier.start,    # fetch the result, queue its verify job
            "verifying": self.verifier.finish,   # the verify job ended: accept or reject
            "released": self._verify_released,   # paid by the window's end: still verified for the merge
        }
        """Shard state -> the step that moves a shard in it on."""

    @property
    def market(self):
        """The market client (wallet.market.MarketClient); replacing it (a new connection to the
        node) reaches the verifier too."""
        return self._market

    @market.setter
    def market(self, market) -> None:
        self._market = self.verifier.market = market

    # ---- reads (any thread) --------------------------------------------------------------
    def orders(self) -> list[OrderStatus]:
        return self.book.orders()

    def order(self, order_id: int) -> OrderStatus:
        o = self.book.order(order_id)
        if o is None:
            raise BuyerError(f"no order {order_id} on this network (see `kminer order list`)")
        return o

    # ---- posting -------------------------------------------------------------------------
    def post_render(self, scene: Any, *, count: int, shards: int, reward_each_wei: int, deadline_s: int,
                    review_window_s: int, seed: int | None = None, size: tuple[int, int] | None = None,
                    assets: Iterable[Path] = (), name: str | None = None, verify_sample: int = 3) -> OrderStatus:
        """Post frames [0, count) of `scene` (a SceneSpec, a dict or a JSON file path) as
        `shards` market jobs of about count/shards frames, each paying `reward_each_wei`.
        `assets`: the user files (meshes, images) the scene names by sha256."""
        self._need_account()
        _check_terms(reward_each_wei, deadline_s, review_window_s)
        if count < 1 or shards < 1 or shards > count:
            raise BuyerError("need count >= 1 and 1 <= shards <= count")
        if verify_sample < 1:
            raise BuyerError("verify_sample must be at least 1")
        try:
            spec = scene if isinstance(scene, SceneSpec) else (parse_scene(scene) if isinstance(scene, dict)
                                                               else load_scene(Path(scene)))
            spec = with_outputs(spec, count=count, seed=seed, size=size)
        except SceneError as e:
            raise BuyerError(f"scene: {e}") from None
        self._check_funds(reward_each_wei * shards)
        given = {}
        for p in assets:
            p = Path(p)
            if not p.is_file():
                raise BuyerError(f"asset {p} is not a file")
            given[sha256_file(p)] = p
        missing = [h for h in sorted(spec.content_hashes()) if h not in given and not self.store.has(h)]
        if missing:
            raise BuyerError(f"the scene needs {len(missing)} file(s) not given as assets, e.g. sha256 {missing[0][:16]}…")
        for p in given.values():
            self.store.put_file(p)
        inputs = {f"asset-{h[:16]}": {"sha256": h, "uri": artifact_uri(self.store, h)} for h in sorted(spec.content_hashes())}
        scene_sha = self.store.put_bytes(spec.canonical_json().encode())
        seed_v = spec.outputs.seed
        token = secrets.token_hex(4)
        start = 0
        jobs = []
        for i in range(shards):
            n = count // shards + (1 if i < count % shards else 0)
            job = {"id": f"render-{token}-{i:03d}", "kind": "render",
                   "params": {"scene": json.loads(spec.canonical_json()), "start": start, "count": n, "seed": seed_v},
                   "inputs": inputs, "resources": {"device": "any", "max_wall_s": min(MAX_WALL_S, deadline_s)}}
            jobs.append(_bounded_job(job))  # pixel budget and work checked per shard, before any escrow
            start += n
        rows = [{"start": j["params"]["start"], "count": j["params"]["count"], **self._put_spec(j)} for j in jobs]
        params = {"scene_name": spec.name, "scene_sha": scene_sha, "spec_hash": spec.spec_hash(), "count": count,
                  "seed": seed_v, "size": [spec.outputs.width, spec.outputs.height], "assets": sorted(given),
                  "verify_sample": verify_sample}
        with self._posting():
            oid = self.book.add_order(kind="render", name=name or spec.name, state="posting", params=params,
                                      reward_each_wei=reward_each_wei, deadline_s=deadline_s,
                                      review_window_s=review_window_s, depends_on=[], shards=rows)
            self._post(self.order(oid), list(range(len(rows))))
        return self.order(oid)

    def post_train(self, data_orders: list[int], *, train_params: dict[str, Any], reward_wei: int, deadline_s: int,
                   review_window_s: int, holdout_order: int | None = None, tolerance: float = 0.05,
                   name: str | None = None) -> OrderStatus:
        """Record a train order on the datasets of `data_orders` (render orders); posted by
        step() once they are all done. The held-out data: every shard of `holdout_order`,
        or else the last shard of the last data order (which then needs 2+ shards)."""
        self._need_account()
        _check_terms(reward_wei, deadline_s, review_window_s)
        if not data_orders:
            raise BuyerError("a train order needs at least one render order as data")
        bad = sorted(set(train_params) - TRAIN_KEYS)
        if bad:
            raise BuyerError(f"train parameter {bad[0]!r} is not one a buyer sets; use {', '.join(sorted(TRAIN_KEYS))}")
        if not 0 <= tolerance <= 1:
            raise BuyerError("tolerance must be between 0 and 1")
        for oid in [*data_orders, *([holdout_order] if holdout_order is not None else [])]:
            o = self.order(oid)
            if o.kind != "render":
                raise BuyerError(f"order {oid} is a {o.kind} order; training takes render orders")
        if holdout_order is None:
            last = self.order(data_orders[-1])
            if len(last.shards) < 2:
                raise BuyerError(f"order {last.id} has one shard: give a held-out render order, or data with 2+ shards")
            holdout = {"order": last.id, "shard": len(last.shards) - 1}
        else:
            if holdout_order in data_orders:
                raise BuyerError("the held-out order must not also be training data")
            holdout = {"order": holdout_order, "shard": None}
        params = {"train": dict(train_params), "data": list(data_orders), "holdout": holdout, "tolerance": tolerance}
        deps = sorted(set(data_orders) | {holdout["order"]})
        oid = self.book.add_order(kind="train", name=name or f"train on {', '.join(map(str, data_orders))}",
                                  state="waiting", params=params, reward_each_wei=reward_wei, deadline_s=deadline_s,
                                  review_window_s=review_window_s, depends_on=deps,
                                  shards=[{"spec_sha": "", "spec_uri": ""}])
        return self.order(oid)

    def repost(self, order_id: int) -> OrderStatus:
        """Post the shards that were rejected or refunded again, as new market jobs (same spec)."""
        self._need_account()
        with self._posting():
            return self._repost(order_id)

    def _repost(self, order_id: int) -> OrderStatus:
        o = self.order(order_id)
        again = [s.index for s in o.shards if s.state in ("rejected", "refunded") or (s.state == "released" and s.verified is False)]
        if not again:
            raise BuyerError(f"order {order_id} has no rejected or refunded shard to post again")
        self._check_funds(o.reward_each_wei * len(again))
        for s in o.shards:
            if s.index in again:
                hist = [*s.history, {"job_id": s.job_id, "state": s.state, "miner": s.miner, "figures": s.figures,
                                     "reason": s.reason}]
                self.book.set_shard(order_id, s.index, state="posting", history=hist, job_id=None, miner=None,
                                    chain_status=None, result_sha=None, result_uri=None, verify_job=None, verified=None,
                                    figures=None, reason=None, submitted_seen_at=None, settled_at=None)
        self.book.set_order(order_id, state="posting", reason=None)
        self._post(self.order(order_id), again)
        return self.order(order_id)

    @contextmanager
    def _posting(self) -> Iterator[None]:
        """The orders lock for one posting: waits for another process's pass, then says why not."""
        try:
            self._orders_lock.acquire(POST_WAIT_S)
        except HomeBusy as e:
            raise BuyerError(str(e)) from None
        try:
            yield
        finally:
            self._orders_lock.release()

    def _put_spec(self, job: dict) -> dict:
        try:
            parse_spec(job)
        except SpecError as e:
            raise BuyerError(str(e)) from None
        sha = self.store.put_bytes(json.dumps(job, sort_keys=True).encode())
        return {"spec_sha": sha, "spec_uri": artifact_uri(self.store, sha)}

    def _post(self, o: OrderStatus, indices: list[int]) -> None:
        """Post shards `indices` of `o` in one go (noting the job count first, so a crash
        between the transaction and the record is repaired from the chain by step())."""
        m = self.market
        self.book.set_meta(f"count_before:{o.id}", str(m.job_count()))
        for i in indices:
            self.book.set_shard(o.id, i, state="posting")
        chain = m.chain
        deadline = int(max(time.time(), chain.latest_timestamp()) + o.deadline_s)
        by = {s.index: s for s in o.shards}
        ids, txs = m.post_shards(self.account, kind=o.kind, spec_hashes=["0x" + by[i].spec_sha for i in indices],
                                 spec_uris=[by[i].spec_uri for i in indices], reward_each_wei=o.reward_each_wei,
                                 deadline=deadline, review_window_s=o.review_window_s)
        now = time.time()
        for i, jid in zip(indices, ids):
            self.book.set_shard(o.id, i, state="open", job_id=jid, chain_status="open", tx=txs[-1].tx_hash, posted_at=now)
        self.book.set_order(o.id, state="open", deadline=deadline, reason=None)
        log.info("order %s: posted shard(s) %s as market job(s) %s", o.id, indices, ids)

    def _recover_posting(self, o: OrderStatus, events: list[str]) -> None:
        """An order left in `posting` (crash mid-post): adopt the jobs the chain has, post the rest."""
        m = self.market
        me = self.account.address.lower()
        first = int(self.book.meta(f"count_before:{o.id}") or 0) + 1
        # `recorded`: the post stopped before its transaction (node down, app killed): post it now
        want = {("0x" + s.spec_sha).lower(): s for s in o.shards if s.state in ("posting", "recorded")}
        for j in m.jobs(first=first, limit=10_000):
            s = want.get(j.spec_hash.lower())
            if s is not None and j.buyer.lower() == me:
                self.book.set_shard(o.id, s.index, state="open", job_id=j.id, chain_status=j.status.name.lower(),
                                    posted_at=time.time())
                self.book.set_order(o.id, deadline=j.deadline)
                del want[j.spec_hash.lower()]
        if want:
            self._post(self.order(o.id), sorted(s.index for s in want.values()))
        self.book.set_order(o.id, state="open")
        events.append(f"order {o.id}: posting resumed after a restart")

    def _check_funds(self, need_wei: int) -> None:
        have = self.market.token.balance_of(self.account.address)
        if have < need_wei:
            raise BuyerError(f"not enough NTK: the order escrows {ntk_text(need_wei)}, the account holds "
                             f"{ntk_text(have)}")

    def _need_account(self) -> None:
        if self.account is None:
            raise BuyerError("no account unlocked: posting and paying need the buyer's key")

    # ---- the loop ------------------------------------------------------------------------
    def step(self) -> list[str]:
        """One pass over every unfinished order (see the module docstring). Blocking: chain
        calls, transactions and artifact downloads; verify jobs run in the background."""
        self._need_account()
        try:
            self._orders_lock.acquire()
        except HomeBusy as e:  # another process works these orders; said once, not every pass
            if not self._skipping:
                self._skipping = True
                log.info("buyer pass skipped: %s", e)
                return [f"orders: {e}"]
            return []
        self._skipping = False
        try:
            return self._step()
        finally:
            self._orders_lock.release()

    def _step(self) -> list[str]:
        events: list[str] = []
        self.scheduler.tick()
        for o in self.book.orders():
            step = self.step_by_order_state.get(o.state)
            if step is None:
                continue
            try:
                step(o, events)
            except Exception as e:  # RPC down, store busy...: retried on the next step
                log.warning("order %s: %s", o.id, e)
                log.debug("order %s", o.id, exc_info=True)
                events.append(f"order {o.id}: will retry ({type(e).__name__}: {e})")
        self.scheduler.tick()
        return events

    def run(self, stop, interval_s: float = 2.0, on_events=None) -> None:
        """step() until `stop` (a threading.Event) is set; `on_events(lines)` after each pass."""
        while not stop.is_set():
            lines = self.step()
            if on_events is not None:
                on_events(lines)
            stop.wait(interval_s)

    def _advance_shards(self, o: OrderStatus, events: list[str]) -> None:
        """An open (or stalled) order: move each shard on by its state, then the order."""
        for s in o.shards:
            step = self.step_by_shard_state.get(s.state)
            if step is None:
                continue
            try:  # one shard's trouble never holds back the others' refunds and answers
                step(o, s, events)
            except Exception as e:
                log.warning("order %s shard %s: %s", o.id, s.index, e)
                log.debug("order %s shard %s", o.id, s.index, exc_info=True)
                events.append(f"order {o.id} shard {s.index}: will retry ({type(e).__name__}: {e})")
        self._check_order(self.order(o.id), events)

    def _follow_chain(self, o: OrderStatus, s: ShardStatus, events: list[str]) -> None:
        """A posted shard: note its claim and result as the chain shows them; refund it when
        its deadline passed without a result."""
        from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

        m = self.market
        j = m.job(s.job_id)
        st = j.status
        self.book.set_shard(o.id, s.index, chain_status=st.name.lower(), miner=j.miner)
        if st in (JobStatus.SUBMITTED, JobStatus.RELEASED, JobStatus.ACCEPTED, JobStatus.REJECTED):
            self.book.set_shard(o.id, s.index, state="submitted", result_sha=j.result_hash.removeprefix("0x"),
                                result_uri=j.result_uri, submitted_seen_at=time.time())
            events.append(f"order {o.id} shard {s.index}: result submitted by {j.miner} (job {j.id})")
        elif st == JobStatus.REFUNDED:
            self.book.set_shard(o.id, s.index, state="refunded", settled_at=time.time())
        elif self.clock.past(j.deadline):
            res = m.refund(self.account, j.id)
            self.book.set_shard(o.id, s.index, state="refunded", chain_status="refunded", tx=res.tx_hash,
                                reason="no result before the deadline; reward refunded", settled_at=time.time())
            events.append(f"order {o.id} shard {s.index}: no result by the deadline, {ntk_text(j.reward_wei)} "
                          "refunded")
        elif st == JobStatus.CLAIMED and s.state != "claimed":
            self.book.set_shard(o.id, s.index, state="claimed")
            events.append(f"order {o.id} shard {s.index}: claimed by {j.miner} (job {j.id})")

    def _verify_released(self, o: OrderStatus, s: ShardStatus, events: list[str]) -> None:
        """Released to the miner before our answer: verify it anyway, once (the merge needs it)."""
        if s.verified is None:
            self.verifier.start(o, s, events)

    def _check_order(self, o: OrderStatus, events: list[str]) -> None:
        bad = [s for s in o.shards if s.state in ("rejected", "refunded") or (s.state == "released" and s.verified is False)]
        if bad:
            if o.state != "stalled":
                why = "; ".join(f"shard {s.index} {s.state}" + (f" ({s.reason})" if s.reason else "") for s in bad)
                self.book.set_order(o.id, state="stalled", reason=f"{why}; `kminer order repost {o.id}` posts it again")
                events.append(f"order {o.id}: stalled: {why}")
            return
        if o.shards and o.settled == len(o.shards):
            self.book.set_order(o.id, state="merging", reason=None)
            self._finish(self.order(o.id), events)

    def _finish(self, o: OrderStatus, events: list[str]) -> None:
        """Every shard verified: merge the render shards into one dataset, or unpack the model."""
        folder = self.orders_dir / str(o.id)
        if o.kind == "render":
            from jobs.render.dataset import merge_datasets  # deferred: loads numpy and trimesh

            out = folder / "dataset"
            parts = folder / "shards"
            for p in (out, parts):
                if p.exists():
                    shutil.rmtree(p)
            dirs = []
            for s in o.shards:
                dirs.append(self.store.materialize(s.result_sha, parts / f"{s.index:03d}", kind="dir", uri=s.result_uri))
            card = parse_dataset_card(merge_datasets(dirs, out))
            shutil.rmtree(parts)  # the merge hard-linked (or copied) every file
            events.append(f"order {o.id}: {card.counts.images} frames merged into {out}")
        else:
            s = o.shards[0]
            out = folder / "model"
            if out.exists():
                shutil.rmtree(out)
            self.store.materialize(s.result_sha, out, kind="dir", uri=s.result_uri)
            events.append(f"order {o.id}: model delivered to {out}")
        self.book.set_order(o.id, state="done", output_dir=str(out))

    def _maybe_post_train(self, o: OrderStatus, events: list[str]) -> None:
        deps = [self.order(d) for d in o.depends_on]
        if any(d.state == "failed" for d in deps):
            self.book.set_order(o.id, state="failed", reason="a data order failed")
            return
        if not all(d.state == "done" for d in deps):
            return
        if self.market.token.balance_of(self.account.address) < o.reward_each_wei:
            if o.reason is None:
                self.book.set_order(o.id, reason="waiting for enough NTK to escrow the reward")
                events.append(f"order {o.id}: data verified, but not enough NTK to post the train job")
            return
        p = o.params
        hold = p["holdout"]
        inputs: dict[str, dict] = {}
        held: dict[str, dict] = {}
        for d in deps:
            for s in d.shards:
                ref = {"sha256": s.result_sha, "uri": s.result_uri, "type": "dir"}
                if d.id == hold["order"] and (hold["shard"] is None or hold["shard"] == s.index):
                    held[f"holdout-o{d.id}-s{s.index:03d}"] = ref
                elif d.id in p["data"]:
                    inputs[f"data-o{d.id}-s{s.index:03d}"] = ref
        job = {"id": f"train-{secrets.token_hex(4)}", "kind": "train", "params": p["train"], "inputs": inputs,
               "resources": {"device": "any", "max_wall_s": min(MAX_WALL_S, o.deadline_s)}}
        images = sum(s.count for d in deps if d.id in p["data"] for s in d.shards
                     if f"data-o{d.id}-s{s.index:03d}" in inputs)
        try:
            job = _bounded_job(job, images=images)
        except BuyerError as e:  # recorded and said; nothing escrowed
            self.book.set_order(o.id, state="failed", reason=str(e))
            events.append(f"order {o.id}: the train job cannot be posted: {e}")
            return
        spec = self._put_spec(job)
        self.book.set_shard(o.id, 0, **spec)
        self.book.set_order(o.id, params={**p, "holdout_inputs": held}, state="posting")
        self._post(self.order(o.id), [0])
        events.append(f"order {o.id}: data verified; train job posted ({len(inputs)} shard(s), {len(held)} held out)")

    # ---- outputs -------------------------------------------------------------------------
    def fetch(self, order_id: int, dest: Path) -> Path:
        """Copy the order's merged dataset (render) or model folder (train) to `dest`."""
        o = self.order(order_id)
        if o.state != "done" or not o.output_dir:
            raise BuyerError(f"order {order_id} is {o.state}: nothing verified to fetch yet")
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise BuyerError(f"{dest} exists and is not an empty folder")
        if dest.exists():
            dest.rmdir()
        shutil.copytree(o.output_dir, dest)
        return dest

    def close(self) -> None:
        self.scheduler.shutdown()
        self.queue.close()
        self.book.close()
        self._orders_lock.release_all()


def _bounded_job(job: dict, *, images: int | None = None) -> dict:
    """`job` (a spec dict) checked as a miner will check it, before anything is escrowed: the
    scene's bounds and the shard's pixel budget (jobs.render.spec.parse_render_params), and its
    work (jobs.estimate); its wall-clock limit then follows from that work on a reference CPU,
    not from the deadline. BuyerError (one line) when a miner would refuse it."""
    from jobs.estimate import REFERENCE_RATES, estimate_job
    from jobs.render.spec import parse_render_params

    try:
        if job["kind"] == "render":
            parse_render_params(job["params"])
        spec = parse_spec(job)
        est = estimate_job(spec, images=images)
    except (SceneError, SpecError) as e:
        raise BuyerError(str(e)) from None
    limit = est.time_limit_s(REFERENCE_RATES["cpu"], spec.resources.max_wall_s)
    return {**job, "resources": {**job["resources"], "max_wall_s": limit}}


def _check_terms(reward_wei: int, deadline_s: int, review_window_s: int) -> None:
    if not isinstance(reward_wei, int) or reward_wei <= 0:
        raise BuyerError("the reward must be a positive amount of NTK")
    if deadline_s <= 0 or review_window_s <= 0:
        raise BuyerError("the deadline and the review window must be positive")

