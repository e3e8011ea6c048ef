"""The desktop app's market side: the buyer, the miner and the model market over the GUI's
wallet session, built once the wallet is unlocked, and driven one pass at a time.

`MarketSession.step()` is what the GUI calls every couple of seconds on its chain runner:
one MinerService pass (when a device may mine) and one BuyerService pass (when there are
orders), and it says what happened (payments received, orders that moved) so the window can
refresh the right pages and notify.

The mining account. The job market does not let a buyer claim their own job
(`BuyerCannotClaim`), yet a new user on the embedded `local` test network is both the only
buyer and the only miner. On `local` the miner therefore signs with a second account derived
from the wallet's key (keccak of a fixed label and the key: nothing more to store or back
up, and the same wallet always gets the same mining account), funded with gas ETH from the
wallet's account on first use. NTK on `local` is test money. On every other network the
miner signs with the wallet's account itself (a real rig mines other people's orders).

Threading: every method except `ready` runs on ONE thread, the GUI's "chain" runner (the
embedded chain and the wallet are single-thread). The miner's and buyer's job processes run
in their own threads and processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.account import Locked, local_mining_account
from app.buyer import BuyerService
from app.context import AppContext
from app.earnings import Ledger
from app.home_lock import HomeBusy
from app.miner import MinerService
from app.models import ModelService
from wallet.errors import WalletError

log = logging.getLogger(__name__)

MINING_GAS_WEI = 10 * 10**18
"""ETH the wallet gives its local mining account for gas when it has less than a tenth of it."""


@dataclass
class StepReport:
    """What one pass did. Amounts in NTK wei."""

    ready: bool = False
    """The market is open (wallet unlocked, contracts found)."""
    message: str | None = None
    """Why it is not ready, or what went wrong this pass (one line)."""
    paid_wei: list[int] = field(default_factory=list)
    """Payments the miner received in this pass, one entry each."""
    buyer_events: list[str] = field(default_factory=list)
    miner_status: str = ""
    mining: bool = False


class MarketSession:
    """See the module docstring. `wallet` is the GUI's app.account.WalletSession."""

    def __init__(self, ctx: AppContext, wallet, devices, *, sandbox: str | None = None):
        self.ctx = ctx
        self.wallet = wallet
        self.devices = devices
        self.sandbox = sandbox
        self.miner = None
        self.buyer = None
        self._ledger = None
        self._models = None
        self._chain_id: int | None = None
        self._miner_address: str | None = None
        self.last_reason: str | None = None
        """Why the market did not open on the last try (None once open)."""

    # -- building ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.buyer is not None

    @property
    def models(self):
        """The model market (app.models.ModelService); reads work while locked."""
        if self._models is None:
            self._models = ModelService(self.ctx, self.wallet)
        return self._models

    def miner_address(self) -> str | None:
        return self._miner_address

    def open(self) -> str | None:
        """Build the buyer and the miner if the wallet is unlocked. None when ready, else the
        reason in one line (locked, node down, no market on this network)."""
        svc = self.wallet.service
        try:
            chain_id = svc.chain.chain_id
        except WalletError as e:
            self._drop()
            return str(e)
        if not svc.is_unlocked():  # locking the wallet stops the market signing (jobs resume on unlock)
            self._drop()
            return "the wallet is locked: unlock it on the Wallet page to mine and to order"
        if self.buyer is not None and chain_id == self._chain_id:
            return None
        self._drop()
        try:
            me = self.wallet.signer()
        except Locked:
            return "the wallet is locked: unlock it on the Wallet page to mine and to order"
        try:
            market = svc.market()
        except WalletError as e:
            return str(e)

        miner_account = me
        if svc.network.embedded:
            miner_account = local_mining_account(me)
            chain = svc.chain
            if chain.balance_wei(miner_account.address) < MINING_GAS_WEI // 10:
                res = chain.transact(me, to=miner_account.address, value_wei=MINING_GAS_WEI, gas=21_000,
                                     what="gas for the local mining account")
                self.wallet.record_eth_sent(res, miner_account.address, MINING_GAS_WEI, "gas for the mining account")
                log.info("local chain: mining account %s funded with gas", miner_account.address)
        self._ledger = Ledger(self.ctx.paths.ledger_db)
        try:  # the miner first: while another process holds its lock, nothing else is built each pass
            self.miner = MinerService(self.ctx, market, miner_account, self.devices, self._ledger,
                                      sandbox=self.sandbox)
        except HomeBusy as e:  # `kminer agent` mines with this home on a JSON-RPC network
            self._drop()
            return str(e)
        self.buyer = BuyerService(self.ctx, market, me, sandbox=self.sandbox)
        self._chain_id = chain_id
        self._miner_address = miner_account.address
        return None

    def _drop(self) -> None:
        for svc in (self.miner, self.buyer):
            if svc is not None:
                try:
                    svc.close()
                except Exception:  # closing must not stop the rest from closing
                    log.exception("closing %s", type(svc).__name__)
        if self._ledger is not None:
            self._ledger.close()
        self.miner = self.buyer = self._ledger = None
        self._chain_id = self._miner_address = None

    # -- driving -------------------------------------------------------------------------
    def step(self) -> StepReport:
        """One pass of the miner (claiming only while some device may mine) and the buyer."""
        reason = self.last_reason = self.open()
        if reason is not None:
            return StepReport(ready=False, message=reason)
        rep = StepReport(ready=True)
        rep.mining = any(s.active for s in self.devices.poll())
        paid_before = {r.job_id for r in self.miner.rows() if r.state == "paid"}
        try:
            # a miner with nothing claimed and no device mining has nothing to do
            if rep.mining or self.miner.rows(active_only=True):
                self.miner.step(claim=rep.mining)
            rep.miner_status = self.miner.status_text()
        except Exception as e:  # RPC down, store busy: the miner keeps its state; next pass retries
            log.warning("miner pass failed: %s", e)
            rep.message = f"miner: {e}"
        for r in self.miner.rows():
            if r.state == "paid" and r.job_id not in paid_before:
                rep.paid_wei.append(r.reward_wei)
        try:
            if self.buyer.orders():
                rep.buyer_events = self.buyer.step()
        except Exception as e:
            log.warning("buyer pass failed: %s", e)
            rep.message = f"orders: {e}"
        return rep

    def close(self) -> None:
        self._drop()
        if self._models is not None:
            self._models.close()
            self._models = None


class MarketNotReady(ValueError):
    """The market is not open (wallet locked, node down); the message says why, in one line."""


class BuyerFacade:
    """Stands for the session's BuyerService, which exists only while the wallet is unlocked:
    the Orders view is built once and keeps working across lock/unlock and network switches.
    Order reads answer empty while the market is closed; anything else raises MarketNotReady
    with the reason. Chain-thread rules are those of BuyerService."""

    def __init__(self, session: MarketSession):
        self._session = session

    def __getattr__(self, name: str) -> Any:
        buyer = self._session.buyer
        if buyer is None:
            if name == "orders":
                return lambda: []
            if name == "step":
                return lambda: []
            if name == "account":
                return None
            raise MarketNotReady(self._session.last_reason or "the market is not open yet: unlock the wallet")
        return getattr(buyer, name)
