"""Which market an order id means, and order-market orders as `kminer order list|show` print them.

Both markets number their orders from 1, so an order is named with its market:

    job:N   an order on the job market (one market job per shard; `kminer order ... --job-market`)
    p2p:N   an order on the order market (one escrow, results peer to peer; `... --p2p`)
    N       the default market's order N (the order market where the network has one, as
            `order render|train` post; else the job market), or the other market's when only
            that one has an order N

`list` prints every order with its market-qualified id; `show`, `fetch` say which market they used.
The order market's orders are read from the buyer's state files (app.p2p_orders) and the chain.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

from app.amounts import ntk_text
from app.errors import UserError
from cli.shared import user_errors

JOB, P2P = "job", "p2p"
NAMES = {JOB: "job market", P2P: "order market (peer to peer)"}
ID_HELP = "the order: N, p2p:N (order market) or job:N (job market); N alone: see `kminer order --help`"


def parse_ref(text: str) -> tuple[str | None, int]:
    """'3' -> (None, 3), 'p2p:3' -> ('p2p', 3), 'job:3' -> ('job', 3); one-line UserError otherwise."""
    t = str(text).strip().lower()
    market = None
    for m in (P2P, JOB):
        if t.startswith(m + ":"):
            market, t = m, t[len(m) + 1:]
            break
    if not t.isdigit() or int(t) < 1:
        raise UserError(f"order {text!r}: use N, p2p:N (order market) or job:N (job market), N from 1")
    return market, int(t)


def flagged(args: argparse.Namespace, ref_market: str | None = None) -> str | None:
    """The market the options and the id's prefix name (None: neither names one)."""
    flags = {m for m, on in ((P2P, getattr(args, "p2p", False)), (JOB, getattr(args, "job_market", False))) if on}
    if ref_market:
        flags.add(ref_market)
    if len(flags) > 1:
        raise UserError("the order id and --p2p/--job-market name different markets: name one")
    return next(iter(flags), None)


def default_market(market) -> str:
    """Where a new order goes by default: the GUI's rule (app.orders.service.by_default)."""
    from app.orders.service import by_default

    return P2P if by_default(market) else JOB


def default_market_of(args: argparse.Namespace) -> str:
    """default_market on the network the wallet options name (reads the deployment only)."""
    from cli.shared import open_wallet

    with open_wallet(args) as wallet:
        return default_market(user_errors(wallet.market))


@dataclass(frozen=True)
class P2PView:
    """One order-market order: the buyer's state file and, when the node answered, the chain's view."""

    order: Any            # app.p2p_orders.P2POrder
    onchain: Any = None   # wallet.order_market.Order, or None when it could not be read
    chain_error: str = ""

    @property
    def ref(self) -> str:
        return f"{P2P}:{self.order.id}"

    @property
    def reward_each_wei(self) -> int:
        return self.onchain.reward_each_wei if self.onchain else 0

    @property
    def paid_shards(self) -> list[int]:
        return self.onchain.paid_shards if self.onchain else [s.shard for s in self.order.shards
                                                              if s.state in ("paid", "done")]

    @property
    def refunded_wei(self) -> int:
        """What came back to the buyer: every unpaid shard's reward once the order is closed."""
        c = self.onchain
        return c.reward_each_wei * (c.shards - len(c.paid_shards)) if c and c.closed else 0

    def shard_state(self, s) -> str:
        """The buyer's state of shard `s` (P2PShard), `refunded` for an unpaid one of a refunded order."""
        if self.order.refunded and s.state not in ("paid", "done", "slashed", "key demanded") \
                and s.shard not in self.paid_shards:
            return "refunded"
        return s.state


def p2p_orders_dir(ctx, market):
    from app.orders.service import buyer_orders_dir

    return buyer_orders_dir(ctx, market)


def p2p_views(ctx, market, order_id: int | None = None) -> list[P2PView]:
    """This home's orders on `market`'s order market (or only `order_id`), each with its chain record. *(chain)*"""
    from app.orders.service import order_market
    from app.p2p_orders import read_orders

    orders = [o for o in read_orders(p2p_orders_dir(ctx, market)) if order_id is None or o.id == order_id]
    if not orders:
        return []
    try:
        om = order_market(market)
    except Exception as e:  # noqa: BLE001 - the files are still worth showing
        return [P2PView(o, None, str(e)) for o in orders]
    out = []
    for o in orders:
        try:
            out.append(P2PView(o, om.order(o.id)))
        except Exception as e:  # noqa: BLE001 - node down: the files alone, and why
            out.append(P2PView(o, None, f"{type(e).__name__}: {e}"))
    return out


def _frames(v: P2PView, shard: int) -> tuple[int, int]:
    from app.orders.render import shard_frames

    if v.order.kind != "render" or not v.order.count:
        return 0, 0
    return shard_frames(v.order.count, len(v.order.shards), shard)


def p2p_doc(v: P2PView) -> dict:
    """An order-market order as plain JSON data (amounts in wei as strings)."""
    o, c = v.order, v.onchain
    shards = []
    for s in o.shards:
        start, n = _frames(v, s.shard)
        shards.append({"index": s.shard, "start": start, "count": n, "state": v.shard_state(s), "buyer_state": s.state,
                       "miner": s.miner or None, "payout": s.payout or None, "reason": s.reason or None,
                       "paid": s.shard in v.paid_shards, "result_dir": s.result_dir or None})
    doc = {"market": P2P, "ref": v.ref, "id": o.id, "kind": o.kind, "name": o.name, "count": o.count,
           "state": o.state, "done": o.done, "shards": shards, "posted_ts": o.posted_ts, "refunded": o.refunded,
           "paid_shards": v.paid_shards}
    if c is not None:
        doc.update(reward_each_wei=str(c.reward_each_wei), total_wei=str(c.reward_each_wei * c.shards),
                   escrow_wei=str(c.escrow_wei), paid_wei=str(c.reward_each_wei * len(c.paid_shards)),
                   refunded_wei=str(v.refunded_wei), closed=c.closed, deadline=c.deadline, hold_until=c.hold_until)
    else:
        doc["chain_error"] = v.chain_error
    return doc


def p2p_line(v: P2PView) -> str:
    o, c = v.order, v.onchain
    money = (f", {ntk_text(c.escrow_wei)} escrowed, {ntk_text(c.reward_each_wei * len(c.paid_shards))} paid"
             + (f", {ntk_text(v.refunded_wei)} refunded" if v.refunded_wei else "")) if c else " (chain not read)"
    return (f"{v.ref} {_what(o)}: {o.state}, {o.done}/{len(o.shards)} shard(s) unsealed{money}"
            + (f"\n  fetch it: kminer order fetch {v.ref} --out DIR" if o.state == "done" else ""))


def _what(o) -> str:
    return f"{o.kind} '{o.name}'" + (f" {o.count} frames" if o.kind == "render" and o.count else "")


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def p2p_detail(v: P2PView) -> str:
    """`show`: the order, its money on chain, and every shard's state, miner and result folder."""
    o, c = v.order, v.onchain
    lines = [f"{v.ref} on the {NAMES[P2P]}: {_what(o)} in {len(o.shards)} shard(s): {o.state}"]
    if c is not None:
        paid = c.paid_shards
        lines.append(f"  reward {ntk_text(c.reward_each_wei)} per shard; escrow left {ntk_text(c.escrow_wei)}; "
                     f"paid {ntk_text(c.reward_each_wei * len(paid))}"
                     + (f" (shard(s) {', '.join(map(str, paid))})" if paid else "")
                     + f"; refunded {ntk_text(v.refunded_wei)}" + ("; closed" if c.closed else ""))
        lines.append(f"  due {_when(c.deadline)}; unpaid shards refundable after {_when(c.hold_until)}")
    else:
        lines.append(f"  (the chain could not be read: {v.chain_error})")
    for s in o.shards:
        start, n = _frames(v, s.shard)
        rng = f" frames {start}-{start + n - 1}" if n else ""
        state = v.shard_state(s)
        if state == "fetching":
            state = "committed, fetching"
        who = f" by {s.miner}" + (f" (payout {s.payout})" if s.payout and s.payout != s.miner else "") if s.miner else ""
        tail = f" -> {s.result_dir}" if s.result_dir else (f": {s.reason}" if s.reason else "")
        lines.append(f"  shard {s.shard}{rng}: {state}{who}{tail}")
    return "\n".join(lines)


def resolve(args: argparse.Namespace, ctx, market, order_id: int, ref_market: str | None,
            has_job: Any) -> str:
    """The market `order_id` names (see the module docstring). `has_job(order_id) -> bool`."""
    m = flagged(args, ref_market)
    if m:
        return m
    first = default_market(market)
    other = JOB if first == P2P else P2P

    def has(mk: str) -> bool:
        if mk == JOB:
            return bool(has_job(order_id))
        d = p2p_orders_dir(ctx, market)
        return d is not None and (d / f"{order_id}.json").is_file()

    if has(first):
        return first
    if has(other):
        return other
    raise UserError(f"no order {order_id} of yours on this network's job market or order market "
                    "(see `kminer order list`)")


def fetch_p2p(ctx, market, order_id: int, out) -> dict:
    """Merge an order-market render order's verified, unsealed shards into `out` (new or empty),
    or copy a train order's verified model folder there: {"kind", "frame_ranges"}. Reads the
    buyer's state files only, so it works while `watch` serves the desk."""
    from pathlib import Path

    from app.p2p_orders import order_kind, result_dirs, save_model
    from jobs.render.dataset import RenderError, merge_datasets

    d = p2p_orders_dir(ctx, market)
    if d is None:
        raise UserError("this network has no order market")
    try:
        if order_kind(d, order_id) == "train":
            save_model(d, order_id, Path(out))
            return {"kind": "train", "frame_ranges": []}
        dirs = result_dirs(d, order_id)
    except ValueError as e:
        raise UserError(f"{e} (kminer order watch)" if "unsealed" in str(e) else str(e)) from None
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} is not empty")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        card = merge_datasets(dirs, out, link=False)
    except (RenderError, OSError) as e:
        import shutil

        if made:
            shutil.rmtree(out, ignore_errors=True)  # nothing half-written
        raise UserError(str(e) if isinstance(e, RenderError) else f"{out}: {e.strerror or e}") from None
    return {"kind": "render", "frame_ranges": [list(r) for r in card["frame_ranges"]]}
