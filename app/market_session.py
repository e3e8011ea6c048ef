"""The desktop app's market side: the buyer, the miner and the model market over the GUI's
wallet session, built once the wallet is unlocked, and driven one pass at a time.

`MarketSession.step()` is what the GUI calls every couple of seconds on its chain runner:
one MinerService pass (when a device may mine) and one BuyerService pass (when there are
orders), and it says what happened (payments received, orders that moved) so the window can
refresh the right pages and notify.

The miner's signer is `WalletSession.market_signer()` (app.account.mining_key): the rig's
mining key when there is one, so the miner runs after a reboot with the main wallet locked
(the buyer waits for the unlock); else the unlocked wallet. The job market does not let a
buyer claim their own job (`BuyerCannotClaim`), yet a new user on the embedded `local` test
network is both the only buyer and the only miner: there, without a mining key, the miner
signs with a second account derived from the wallet's key (app.account.mining_account),
funded with gas ETH from the wallet's account on first use. NTK on `local` is test money.
Each pass also says whether the rig can claim (`StepReport.readiness`, app.rig): the miner
claims only when it is ready; devices without a price floor get their default first
(app.floors).

Threading: every method except `ready` runs on ONE thread, the GUI's "chain" runner (the
embedded chain and the wallet are single-thread). The miner's and buyer's job processes run
in their own threads and processes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from app.account import MarketSigner, NoMarketSigner
from app.buyer import BuyerService
from app.context import AppContext
from app.earnings import Ledger
from app import local_rig
from app.home_lock import HomeBusy
from app.miner import MinerService, work_text
from app.models import ModelService
from app.floors import fill_default_floors
from app.readiness import Readiness, rig_readiness
from app.rig import rig_facts
from wallet.errors import WalletError

log = logging.getLogger(__name__)

"""Test NTK minted and staked for the rig's own signer on the embedded chain (the order market)."""
"""ETH the wallet gives its local mining account for gas when it has less than a tenth of it."""
LOCKED_BUYER = "the wallet is locked: unlock it on the Wallet page to order (the mining key mines meanwhile)"


@dataclass
class StepReport:
    """What one pass did. Amounts in NTK wei."""

    ready: bool = False
    """The market is open (wallet unlocked, contracts found)."""
    message: str | None = None
    """Why it is not ready, or what went wrong this pass (one line)."""
    paid_wei: list[int] = field(default_factory=list)
    """Payments the miner received in this pass, one entry each (job-market jobs, order-market shards)."""
    buyer_events: list[str] = field(default_factory=list)
    order_events: list[str] = field(default_factory=list)
    """What the order market's miner did this pass (claims, commitments, payments)."""
    miner_status: str = ""
    mining: bool = False
    readiness: Readiness | None = None
    """Whether the rig can claim now, or the one reason and its fix (app.readiness)."""
    device_work: dict[str, str] = field(default_factory=dict)
    """Device key -> what it runs now ("order p2p:3 shard 1 render 5 NTK running 40%", app.miner.work_text)."""


class MarketSession:
    """See the module docstring. `wallet` is the GUI's app.account.WalletSession."""

    def __init__(self, ctx: AppContext, wallet, devices, *, sandbox: str | None = None):
        self.ctx = ctx
        self.wallet = wallet
        self.devices = devices
        self.sandbox = sandbox
        self.miner = None
        self.buyer = None
        self.order_miner = None
        """The order market's miner (app.orders.OrderMinerRunner) beside the job market's, when the
        network has an order market; shards run in the same queue on the same devices."""
        self._p2p_buyer = None
        self._ledger = None
        self._models = None
        self._chain_id: int | None = None
        self._miner_address: str | None = None
        self._market = None
        self.market_signer: MarketSigner | None = None
        """Who signs the miner's claims and results, and the payout address it names."""
        self._signer_error: NoMarketSigner | None = None
        self.last_reason: str | None = None
        """Why the market did not open on the last try (None once open)."""

    # -- building ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """The buyer is open (the main wallet is unlocked); the miner may run without it."""
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
        """Build the miner when a key can sign (the mining key, or the unlocked wallet) and the
        buyer when the wallet is unlocked. None when both are open, else the reason in one line
        (locked, node down, no market on this network)."""
        svc = self.wallet.service
        try:
            chain_id = svc.chain.chain_id
        except WalletError as e:
            self._drop()
            return str(e)
        unlocked = svc.is_unlocked()
        keeps_mining = unlocked or (self.market_signer is not None and self.market_signer.source == "mining-key")
        if self.miner is not None and chain_id == self._chain_id and keeps_mining:
            if unlocked and self.buyer is None:  # the mining key mined meanwhile: only the buyer opens
                self.buyer = BuyerService(self.ctx, self._market, self.wallet.signer(), sandbox=self.sandbox)
            elif not unlocked and self.buyer is not None:
                self._close(self.buyer)
                self.buyer = None
            return None if unlocked else LOCKED_BUYER
        self._drop()
        try:
            signer = self.wallet.market_signer()  # locking the wallet stops a wallet-signed miner (resumes on unlock)
        except NoMarketSigner as e:
            self._signer_error = e
            return f"{e.reason}: {e.fix}"
        try:
            market = svc.market()
        except WalletError as e:
            return str(e)
        if (res := local_rig.fund_gas(self.wallet, svc.chain, signer)) is not None:
            self.wallet.record_eth_sent(res, signer.address, local_rig.MINING_GAS_WEI, "gas for the mining account")
            log.info("local chain: mining account %s funded with gas", signer.address)
        fill_default_floors(self.ctx, list(self.devices.devices))
        self._ledger = Ledger(self.ctx.paths.ledger_db)
        try:  # the miner first: while another process holds its lock, nothing else is built each pass
            self.miner = MinerService(self.ctx, market, signer.account, self.devices, self._ledger,
                                      sandbox=self.sandbox)
        except HomeBusy as e:  # `kminer agent` mines with this home on a JSON-RPC network
            self._drop()
            return str(e)
        if unlocked:
            self.buyer = BuyerService(self.ctx, market, self.wallet.signer(), sandbox=self.sandbox)
        self.order_miner = self._open_order_miner(market, signer)
        if self.order_miner is not None:
            self.miner.add_work_source(self.order_miner)  # its shards run in the miner's queue
        self._chain_id = chain_id
        self._miner_address = signer.address
        self.market_signer = signer
        self._market = market
        return None if unlocked else LOCKED_BUYER

    def _open_order_miner(self, market, signer):
        """The order miner, or None where the network has no order market (or its port is taken:
        the job market still mines; the reason is logged). Without a stake on the order market
        buyers grant it nothing: `order_stake_problem` says so (Wallet → stake)."""
        from app.orders.service import OrderMinerRunner

        if not getattr(market.deployment, "order_market", None):
            return None
        try:
            runner = OrderMinerRunner(self.ctx, market, signer, self.miner.queue, self.miner.store,
                                      quote=self.miner.quote_spec, ledger=self._ledger, indexer=self.miner.indexer)
        except OSError as e:
            log.warning("orders: cannot open the transfer port: %s", e)
            return None
        self._local_stake(market, runner, signer)
        return runner

    def _local_stake(self, market, runner, signer) -> None:
        """On the embedded chain the app stakes test NTK for its own mining signer, so the user's
        orders on the order market are claimed by this rig as jobs are (app.local_rig)."""
        if not self.wallet.service.is_unlocked():
            return
        try:
            if local_rig.stake(self.wallet, market, runner, signer):
                log.info("local chain: %s test NTK staked for %s on the order market",
                         local_rig.LOCAL_STAKE_WEI // 10**18, signer.address)
        except Exception as e:  # a convenience: jobs are mined without it
            log.warning("local chain: no stake on the order market: %s", e)

    def order_stake_problem(self) -> str | None:
        """Why the order miner's claims would be refused (no stake), or None. *(chain)*"""
        try:
            return self.order_miner.stake_problem() if self.order_miner is not None else None
        except Exception as e:
            return f"the order market's stake cannot be read: {e}"

    def p2p_buyer(self):
        """The buyer of orders on the order market (its desk serves miners while the app runs);
        opened on first use. MarketNotReady when the wallet is locked. *(chain)*"""
        from app.orders.service import OrderBuyerRunner

        if self._p2p_buyer is None:
            if self.buyer is None or self._market is None:
                raise MarketNotReady(self.last_reason or "the market is not open yet: unlock the wallet")
            self._p2p_buyer = OrderBuyerRunner(self.ctx, self._market, self.wallet.signer(), sandbox=self.sandbox)
        return self._p2p_buyer

    def has_order_market(self) -> bool | None:
        """Whether this network's deployment has an order market (None: the market is not open yet)."""
        m = self._market
        return None if m is None else bool(getattr(m.deployment, "order_market", None))

    def p2p_by_default(self) -> bool:
        """Whether a new dataset order should go to the order market (app.orders.service.by_default)."""
        from app.orders.service import by_default

        return by_default(self._market)

    def p2p_orders_dir(self):
        """The P2P buyer's state folder on this network's order market (app.p2p_orders reads it),
        or None while unknown."""
        from app.orders.service import buyer_orders_dir

        return buyer_orders_dir(self.ctx, self._market)

    def p2p_check_result(self, order_id: int) -> dict | None:
        """A P2P train order's finished model check (figures), from the open buyer or its queue file. *(chain)*"""
        from app.orders.service import buyer_check_result

        if self._p2p_buyer is not None:
            return self._p2p_buyer.check_result(order_id)
        return buyer_check_result(self.ctx, self._market, order_id)

    def has_p2p_orders(self) -> bool:
        from app.orders.service import buyer_has_orders

        return self._market is not None and buyer_has_orders(self.ctx, self._market)

    def signer_changed(self) -> None:
        """The mining key was made, rotated or revoked: the next pass opens the miner anew."""
        self._drop()

    @staticmethod
    def _close(svc) -> None:
        try:
            svc.close()
        except Exception:  # closing must not stop the rest from closing
            log.exception("closing %s", type(svc).__name__)

    def _drop(self) -> None:
        for svc in (self.order_miner, self._p2p_buyer, self.miner, self.buyer):
            if svc is not None:
                self._close(svc)
        if self._ledger is not None:
            self._ledger.close()
        self.miner = self.buyer = self._ledger = self.order_miner = self._p2p_buyer = None
        self._chain_id = self._miner_address = None
        self.market_signer = self._signer_error = self._market = None

    # -- driving -------------------------------------------------------------------------
    def step(self) -> StepReport:
        """One pass of the miner (claiming only while some device may mine) and the buyer."""
        reason = self.last_reason = self.open()
        readiness = self.readiness()
        if self.miner is None:
            return StepReport(ready=False, message=reason, readiness=readiness)
        rep = StepReport(ready=self.buyer is not None, message=reason, readiness=readiness)
        rep.mining = any(s.active for s in self.devices.poll())
        paid_before = {r.job_id for r in self.miner.rows() if r.state == "paid"}
        try:
            # a miner with nothing claimed and no device mining has nothing to do
            if rep.mining or self.miner.rows(active_only=True):
                self.miner.step(claim=rep.mining and readiness.ready)
            rep.miner_status = self.miner.status_text()
        except Exception as e:  # RPC down, store busy: the miner keeps its state; next pass retries
            log.warning("miner pass failed: %s", e)
            rep.message = f"miner: {e}"
        for r in self.miner.rows():
            if r.state == "paid" and r.job_id not in paid_before:
                rep.paid_wei.append(r.reward_wei)
        if self.order_miner is not None:
            try:  # shards already taken are delivered and collected even while no device mines
                rep.order_events = self.order_miner.step(claim=rep.mining and readiness.ready)
                rep.paid_wei += self.order_miner.paid_wei  # booked in the earnings ledger this pass
            except Exception as e:
                log.warning("order miner pass failed: %s", e)
                rep.message = f"orders: {e}"
        rep.device_work = self._device_work()
        try:
            if self.buyer is not None and self.buyer.orders():
                rep.buyer_events = self.buyer.step()
            if self.buyer is not None and (self._p2p_buyer is not None or self.has_p2p_orders()):
                rep.buyer_events += self.p2p_buyer().step()
        except Exception as e:
            log.warning("buyer pass failed: %s", e)
            rep.message = f"orders: {e}"
        try:
            if self._models is not None or self.models.selling_p2p():
                rep.buyer_events += self.models.serve_step()
        except Exception as e:
            log.warning("model serving pass failed: %s", e)
        return rep

    def _device_work(self) -> dict[str, str]:
        """What each device runs, by device key, from the miner's device lines (both markets)."""
        out = {}
        try:
            for line in self.miner.device_lines():
                text = work_text(line)
                if text:
                    prog = line.get("progress")
                    out[line["key"]] = text + (f" {prog * 100:.0f}%" if isinstance(prog, (int, float)) else "")
        except Exception as e:  # a view: never stops the pass
            log.debug("device lines: %s", e)
        return out

    def readiness(self) -> Readiness:
        """Whether the rig can claim now (app.rig); the signer the last `open` found is reused."""
        facts, _ = rig_facts(self.ctx, self.wallet.service, self.devices.states(), signer=self.market_signer,
                             signer_error=self._signer_error if self.market_signer is None else None,
                             sandbox=self.sandbox)
        return rig_readiness(facts)

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
