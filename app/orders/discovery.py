"""The miner's order discovery (`OrderMiner` inherits it): new orders read from the chain, and
orders not taken yet asked again.

Each pass reads the orders posted since the last one and asks their buyers' desks for the spec
documents (`OrderMiner._refuse` decides), at most `MAX_DESKS_PER_PASS` desks a pass. A desk
that does not answer is asked again later, less and less often (doubling from the miner's
`retry_s`, at most `MAX_DESK_BACKOFF_S`), so dead desks cannot keep every pass waiting; an
order not taken for now (`NotNow`: price floor, no free device, inputs being fetched) is asked
again on a later pass. Split out of `app.orders.miner`, which holds the claims and the work.
"""

from __future__ import annotations

import time

from jobs.transport.node import TransportError
from jobs.transport.sealed import SealError
from app.orders.desk import DeskError


class NotNow(Exception):
    """An order this miner does not take now but may later (price floor, no free device)."""


class InputsPending(NotNow):
    """Its inputs are being fetched for the pre-claim check: looked at again in a few seconds."""


INPUTS_LOOK_S = 2.0
MAX_RETRIES_PER_PASS = 8
MAX_DESKS_PER_PASS = 8
"""Desks asked for spec documents in one pass, new orders and retries together."""
MAX_DESK_BACKOFF_S = 3600.0


class DeskDiscovery:
    """Mixin of `OrderMiner`: finding orders and asking their desks, with back-off."""

    def _discover(self, events: list[str]) -> None:
        head = self.om.chain.read(lambda: self.om.chain.w3.eth.block_number)
        posted = (self.om.posted_orders(from_block=self.state["from_block"], to_block=head)
                  if self.state["from_block"] <= head else [])
        if time.monotonic() >= self._retry_at:  # orders not taken yet: again, those whose turn it is
            self._retry_at = time.monotonic() + self.retry_s
            now = time.monotonic()
            due = [p for p in self._unreached.values()
                   if p.deadline > self.now() + 60 and self._next_try.get(p.order_id, 0) <= now]
            for p in self._unreached.values():
                if p.deadline <= self.now() + 60:
                    self._next_try.pop(p.order_id, None)
            self._unreached = {k: v for k, v in self._unreached.items() if v.deadline > self.now() + 60}
            posted = due[:MAX_RETRIES_PER_PASS] + posted
        asked = 0
        for p in posted:
            if str(p.order_id) in self.state["orders"] or str(p.order_id) in self.state["skipped"]:
                continue
            if asked >= MAX_DESKS_PER_PASS:  # the rest wait for the next pass (each may take a timeout)
                self._unreached.setdefault(p.order_id, p)
                self._retry_at = min(self._retry_at, time.monotonic() + INPUTS_LOOK_S)
                continue
            asked += 1
            try:
                why = self._refuse(p)
            except (DeskError, TransportError, SealError, ValueError, OSError) as e:
                # the buyer's desk is away (not watching yet) or answers nonsense: ask again later
                first = p.order_id not in self._unreached
                self._unreached[p.order_id] = p
                fails = self._desk_fails[p.order_id] = self._desk_fails.get(p.order_id, 0) + 1
                # a desk that stays away is asked less and less often: a buyer (or a stranger
                # posting orders with dead desks) cannot keep every miner's pass waiting on it
                self._next_try[p.order_id] = time.monotonic() + min(self.retry_s * 2 ** (fails - 1), MAX_DESK_BACKOFF_S)
                if first:
                    events.append(f"order {p.order_id}: the buyer's desk does not answer yet ({e})")
                continue
            except NotNow as e:
                if p.order_id not in self._unreached:
                    events.append(f"order {p.order_id} not taken for now: {e}")
                self._unreached[p.order_id] = p
                self._next_try.pop(p.order_id, None)
                if isinstance(e, InputsPending):
                    self._retry_at = min(self._retry_at, time.monotonic() + INPUTS_LOOK_S)
                continue
            self._unreached.pop(p.order_id, None)
            self._next_try.pop(p.order_id, None)
            self._desk_fails.pop(p.order_id, None)
            if why:
                self.state["skipped"][str(p.order_id)] = why
                events.append(f"order {p.order_id} skipped: {why}")
                continue
            self.state["orders"][str(p.order_id)] = {"buyer": p.buyer.lower(), "desk": p.spec_uri,
                                                     "spec": self._spec[p.order_id], "shards": p.shards,
                                                     "deadline": p.deadline, "review": p.review_window_s,
                                                     "redeem": p.redeem_window_s, "next": 0, "full": False,
                                                     "reward": str(p.reward_each_wei), "kind": p.kind}
            events.append(f"order {p.order_id}: {p.shards} shard(s) of {p.kind} at {p.reward_each_wei} wei each")
        self.state["from_block"] = head + 1
        self.state["waiting"] = {str(oid): p.block for oid, p in self._unreached.items()}
