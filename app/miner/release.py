"""From a submitted result to the miner's pay: `submitted` -> `paid` (or `rejected`).

The buyer accepts (paid at once) or rejects within the review window; a silent buyer never
holds the pay hostage: once the window has closed in chain time the miner releases the
escrow itself. Every payment is recorded in the earnings ledger against its device.

`Release` gets everything it works with in its constructor; it runs on the one thread that
calls MinerService.step().
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from app.amounts import ntk_text
from app.chain_clock import ChainClock
from app.miner.db import MarketJobRow, MinerDB
from wallet.errors import ContractRevert

log = logging.getLogger("app.miner.service")


class PaymentLedger(Protocol):
    """What the miner writes to the earnings ledger (app.earnings.Ledger; the miner does not
    depend on the earnings package, it is handed one)."""

    def assign_job(self, job_id: int, device_key: str, *, at: float) -> None: ...

    def record_payment(self, job_id: int, tx_hash: str, amount_wei: int, *, timestamp: float,
                       device_key: str | None = None) -> object: ...


@dataclass(kw_only=True, eq=False)
class Release:
    """See the module docstring. `indexer()` is the market's event index (built on first use)."""

    db: MinerDB
    market: Any
    account: Any
    ledger: PaymentLedger
    clock: ChainClock
    indexer: Callable[[], Any]

    def settle(self, r: MarketJobRow) -> None:
        """`submitted`: note the buyer's answer, or release the escrow after the review window."""
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
                self.paid(r, evs[-1].tx_hash, j.reward_wei)
                return
            if j.status == JobStatus.REJECTED:
                self.db.set(r.job_id, state="rejected", reason="the buyer rejected the result", dirty=0)
                return
            if j.status != JobStatus.SUBMITTED:
                self.db.set(r.job_id, state="failed", reason=f"the job is {j.status.name.lower()} on the chain",
                            dirty=0)
                return
            self.db.set(r.job_id, dirty=0)
            r = self.db.row(r.job_id)
        closes = int(r.submitted_at) + int(r.review_window_s or 0)
        self.clock.catch_up(closes)
        if self.clock.now > closes:
            try:
                res = m.release(self.account, r.job_id)
            except ContractRevert as e:  # accepted or rejected meanwhile: read it on the next pass
                log.info("market job %s: release refused (%s)", r.job_id, e)
                self.db.mark_dirty(r.job_id)
                return
            self.paid(r, res.tx_hash, r.reward_wei)

    def paid(self, r: MarketJobRow, tx_hash: str, amount_wei: int) -> None:
        tx = tx_hash if str(tx_hash).startswith("0x") else "0x" + str(tx_hash)
        self.ledger.record_payment(r.job_id, tx, amount_wei, timestamp=time.time(), device_key=r.device_key)
        self.db.set(r.job_id, state="paid", tx_paid=tx, paid_at=time.time(), dirty=0)
        log.info("market job %s paid: %s (%s)", r.job_id, ntk_text(amount_wei), tx)
