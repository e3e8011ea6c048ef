"""What a rig shows and earns of its order-market work: `ShardView` (a shard it holds, for the
agent's status line, the device cards and the Jobs page) and `shards_paid` (the shards an
OrderMarket's payout events paid this rig, one entry per shard). Used by
app.orders.service.OrderMinerRunner; no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

PAYMENT_BY_STAGE = {"committed": "awaiting payment", "submitted": "awaiting payment", "vouched": "awaiting payment",
                    "paid": "paid", "rejected": "rejected", "failed": "not paid", "lost": "not paid"}
"""What a shard's stage means for the rig's pay (the Jobs page's Paid column)."""
SETTLED_STAGES = frozenset({"paid", "rejected", "failed", "lost"})


@dataclass(frozen=True)
class ShardView:
    """A shard this rig holds on the order market, for the agent's status line and the GUI.
    `stage`: OrderMiner's (requested, confirmed, running, committed, submitted, vouched, paid,
    rejected, failed, lost); `reward_wei`: per shard, None until read from the chain."""

    order_id: int
    shard: int
    kind: str
    reward_wei: int | None
    stage: str
    buyer: str | None
    queue_id: str
    paid_at: float | None = None
    reason: str | None = None

    @property
    def ref(self) -> str:
        return f"p2p:{self.order_id}"

    @property
    def payment(self) -> str | None:
        return PAYMENT_BY_STAGE.get(self.stage)

    def as_dict(self) -> dict:
        return {"market": "order", "ref": self.ref, "order": self.order_id, "shard": self.shard, "kind": self.kind,
                "reward_wei": None if self.reward_wei is None else str(self.reward_wei), "stage": self.stage,
                "payment": self.payment, "buyer": self.buyer, "queue_id": self.queue_id, "paid_at": self.paid_at,
                "reason": self.reason}


PAID_EVENTS = ("VoucherRedeemed", "ResultReleased")


@dataclass(frozen=True)
class ShardPaid:
    order_id: int
    shard: int
    amount_wei: int
    tx_hash: str
    timestamp: float | None


def shards_paid(events, *, order_market: str, payout: str, miner: str, delivered) -> list[ShardPaid]:
    """The shards that indexer `events` (wallet.indexer.Event) of OrderMarket `order_market` paid
    to this rig, one entry per shard: a `VoucherRedeemed` to `payout` pays `amount` for the set
    of shards it newly paid (several in one batch, the same for each); of those, only the ones
    `delivered(order_id, shard)` says this rig delivered count (rigs may share a payout
    address). A `ResultReleased` of mining key `miner` pays its one shard."""
    om, payee, me = order_market.lower(), payout.lower(), miner.lower()
    out = []
    for ev in events:
        if ev.name not in PAID_EVENTS or ev.contract.lower() != om:
            continue
        a = ev.args
        oid = int(a["orderId"])
        if ev.name == "VoucherRedeemed":
            if str(a.get("payee", "")).lower() != payee:
                continue
            bits = int(a["shards"])
            count = bin(bits).count("1")
            each = int(a["amount"]) // count if count else 0
            shards = [i for i in range(bits.bit_length()) if bits >> i & 1 and delivered(oid, i)]
        else:
            if str(a.get("miner", "")).lower() != me:
                continue
            each, shards = int(a["amount"]), [int(a["shard"])]
        ts = float(ev.timestamp) if ev.timestamp else None
        out += [ShardPaid(oid, i, each, ev.tx_hash, ts) for i in shards]
    return out
