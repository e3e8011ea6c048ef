"""The buyer's claim gate (`OrderBuyer` inherits it): answering miners' claims at its desk.

A claim is granted when the shard is free (or its grant lapsed) and the miner's stake covers
it. Claims are read against the chain within a per-pass budget (`MAX_CLAIM_CHECKS`, at most
`MAX_CHECKS_PER_KEY` per mining key), known miners first, then round robin over the senders'
networks; a "stake does not cover" refusal is remembered for `REFUSAL_MEMORY_S`, so a key that
lost its stake cannot spend a check per pass. Split out of `app.orders.buyer`, which holds the
rest of the order's life (the desk, `_order`, `_publish`, `_save` used here are `OrderBuyer`'s).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict

from common.guarded_server import network_of
from wallet.order_market import stake_covers
from wallet.order_messages import Claim

GRANT_LAPSE_S = 600
"""A grant the miner has not confirmed after this long lapses; the shard may be granted again."""
MAX_CLAIM_CHECKS = 16
"""Claims read against the chain (the order, the miner's stake) in one pass. Strangers' claims
fill up to half the desk's inbox; past this many the rest stay unanswered (their `status`
stays as it was, so an honest miner asks again) and the chain thread gets on with the granted
miners' work. Known miners (holding a live grant of ours, or paid by us) go first; then the
checks go round the senders' networks (IPv4 /24, IPv6 /48) in turn, so a flood from a few
networks cannot keep a newcomer from another one waiting; at most `MAX_CHECKS_PER_KEY` per
mining key, and a key refused for its stake on an order, for a payout, is refused there without a check
for `REFUSAL_MEMORY_S`."""
MAX_CHECKS_PER_KEY = 2
REFUSAL_MEMORY_S = 60.0
"""How long "this key's stake does not cover a claim" is remembered (a key that lost its stake
cannot spend a check per pass on it), per (key, payout, order): the latest
`MAX_REMEMBERED_REFUSALS` only."""
MAX_REMEMBERED_REFUSALS = 4_096
TRY_LATER = "try later"
"""In a refusal's reason: the cause may pass (the stake covers the claim once other claims
are done), so the miner asks for the shard again later instead of giving it up."""
_HONEST = frozenset({"confirmed", "fetching", "verifying", "paid", "done"})
"""Shard states whose miner counts as known: it holds a live grant, or we paid it (a lapsed
grant, a rejection, a demanded key or a slashing does not count)."""


class OrderError(ValueError):
    """A buyer action refused (one line)."""


class ClaimGate:
    """Mixin of `OrderBuyer`: the claim checks, their budget and the refusal memory."""

    def _init_claims(self) -> None:
        self._claim_checks = MAX_CLAIM_CHECKS
        self._checks_of: dict[str, int] = {}  # mining key -> claim checks spent on it this pass
        # (key, payout, order id) -> (monotonic until, why, open claims then)
        self._refused: OrderedDict[tuple[str, str, int], tuple[float, str, int]] = OrderedDict()
        self._pass_now: int | None = None  # chain time, read once per pass (claims)

    def _on_claim(self, m, events: list[str]) -> None:
        req = m.signed.message
        o = self._order(req.order_id)
        n = json.loads(o["spec"])["shards"]
        if not 0 <= req.shard < n:
            raise OrderError(f"order {req.order_id} has no shard {req.shard}")
        cur = o["shards"].get(str(req.shard))
        if cur is not None and not (cur["state"] == "granted" and time.time() - cur["granted_ts"] > GRANT_LAPSE_S):
            if cur["miner"] == req.miner.lower() and cur["payout"] == req.payout.lower():
                self._publish(o, req.shard, cur)  # a repeated request: the same answer
                return
            self.desk.publish(req.order_id, req.shard, req.miner, state="refused", reason="the shard is taken")
            return  # (no chain read: a flood of claims on taken shards costs the chain thread nothing)
        who = req.miner.lower()
        open_claims = sum(1 for x in o["shards"].values() if x["payout"] == req.payout.lower()
                          and x["state"] not in ("done", "rejected"))
        if why := self._remembered_refusal((who, req.payout.lower(), req.order_id), open_claims):  # no chain read
            self.desk.publish(req.order_id, req.shard, req.miner, state="refused", reason=f"{why} (a moment ago)")
            raise OrderError(f"refused a moment ago: {why}")
        now = self._chain_now()
        if req.expires_at < now:  # (before the budget: expired claims cost no check)
            raise OrderError("the claim request has expired")
        if self._claim_checks <= 0 or self._checks_of.get(who, 0) >= MAX_CHECKS_PER_KEY:
            return  # not answered in this pass (MAX_CLAIM_CHECKS, MAX_CHECKS_PER_KEY): the miner asks again
        self._claim_checks -= 1
        self._checks_of[who] = self._checks_of.get(who, 0) + 1
        order = self.om.order(req.order_id)
        if order.closed or now >= order.deadline or order.is_paid(req.shard):
            raise OrderError("the order no longer takes claims")
        if not stake_covers(self.om.stake(req.miner, req.payout), order, now=now,
                            unbond_delay_s=self.om.unbond_delay_s(), outstanding_claims=open_claims):
            why = f"the stake of this mining key and payout does not cover the claim ({TRY_LATER})"
            self.desk.publish(req.order_id, req.shard, req.miner, state="refused", reason=why)
            self._remember_refusal((who, req.payout.lower(), req.order_id), why, open_claims)
            raise OrderError("stake too small")
        claim = Claim(req.order_id, req.shard, req.miner, req.payout)
        grant = self.om.sign(claim, self.account)
        sh = {"state": "granted", "miner": req.miner.lower(), "payout": req.payout.lower(), "granted_ts": time.time(),
              "grant": grant.to_json()}
        o["shards"][str(req.shard)] = sh
        self._save(o)
        self._publish(o, req.shard, sh)
        events.append(f"order {req.order_id}: shard {req.shard} granted to {req.miner}")

    def _claims_in_turn(self, claims: list) -> list:
        """Claims in the order they are read against the chain: known miners' first, then the
        others; within each, one of each sender network in turn (random within a network)."""
        known = self._known_miners()
        rand = secrets.SystemRandom()
        out = []
        first = [m for m in claims if m.miner.lower() in known]
        for group in (first, [m for m in claims if m.miner.lower() not in known]):
            by_net: dict[str, list] = {}
            for m in group:
                by_net.setdefault(network_of(m.client), []).append(m)
            queues = list(by_net.values())
            rand.shuffle(queues)
            for q in queues:
                rand.shuffle(q)
            for i in range(max((len(q) for q in queues), default=0)):
                out += [q[i] for q in queues if i < len(q)]
        return out

    def _known_miners(self) -> set[str]:
        """Mining keys holding a live grant of ours, or that we paid."""
        lapse = time.time() - GRANT_LAPSE_S
        return {sh["miner"] for o in self._orders.values() for sh in o["shards"].values()
                if sh["state"] in _HONEST or (sh["state"] == "granted" and sh["granted_ts"] >= lapse)}

    def _chain_now(self) -> int:
        if self._pass_now is None:
            self._pass_now = self.now()
        return self._pass_now

    def _remembered_refusal(self, who: tuple[str, str, int], open_claims: int) -> str | None:
        got = self._refused.get(who)
        if got is None:
            return None
        if got[0] < time.monotonic() or open_claims < got[2]:  # (a claim of that payout done since)
            del self._refused[who]
            return None
        return got[1]

    def _remember_refusal(self, who: tuple[str, str, int], why: str, open_claims: int) -> None:
        """`who` is (mining key, payout, order id): the stake's cover is a matter of that
        payout's stake, that order's stake, deadline and open claims, not of the key alone;
        forgotten as soon as fewer of that payout's claims are open."""
        self._refused.pop(who, None)
        self._refused[who] = (time.monotonic() + REFUSAL_MEMORY_S, why, open_claims)
        while len(self._refused) > MAX_REMEMBERED_REFUSALS:
            self._refused.popitem(last=False)
