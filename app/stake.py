"""The miner's stake on the order market, as every face uses it (`kminer wallet stake|unstake|
withdraw-stake`, the GUI's Stake dialog): read it with what it should be, check an amount,
price the transaction, and send it.

    acts = StakeActions(market=..., signer=..., payer=..., network=...)
    st = acts.status()                       # StakeStatus: stake, balance, need, unbonding   *(chain)*
    amount = check_stake_amount("50", st)    # FieldError (one line) for a bad amount
    acts.cost("stake", amount)               # app.costs.CostBreakdown (gas x price + L1 part) *(chain)*
    acts.stake(amount)                       # approve + depositStake; the new StakeStatus    *(chain)*

Buyers grant claims only against the stake of the claiming mining key and its payout address
(`wallet.order_market.stake_covers`); the stake is paid from (and returns to) the payout
address, so only the wallet account that is the payout can stake. Taking a stake back is two
steps: `unstake` starts the contract's unbonding delay (14 days; the amount can still be
slashed meanwhile and stops covering claims at once), `withdraw` takes it back after it.
Amounts are NTK base units (wei); times unix seconds (block time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.amounts import FieldError, check_amount, ntk_text
from app.costs import CostBreakdown, CostLine, reference_coin_usd
from app.order_fees import DEFAULT_REWARD_WEI, DEFAULT_SHARDS, fee_lines, fee_note, stake_fee

# app.orders (web3, the transport) is imported where a chain call needs it: the GUI imports this
# module at start and loads the chain libraries only when it first reads the stake.

MIN_STAKE_WEI = 10**18
"""Below it the rig is told it has no stake (app.orders.service.MIN_STAKE_WEI, checked equal in the tests)."""
DEFAULT_STAKE_BPS = 2_000
"""A claim's stake in a buyer's default order (app.orders.buyer.OrderBuyer.post: a fifth of the reward)."""
MAX_STAKE_WEI = 2**96 - 1
"""The contract keeps amounts in uint96."""


def claim_stake_wei(reward_each_wei: int = DEFAULT_REWARD_WEI, stake_bps: int = DEFAULT_STAKE_BPS) -> int:
    """The stake one claim of an order binds (wallet.order_market.OrderTerms.stake_each_wei)."""
    return reward_each_wei * stake_bps // 10_000


def stake_need_wei(claims: int = DEFAULT_SHARDS) -> int:
    """What covers `claims` claims held at once of the app's default order (10 NTK shards, a
    fifth staked: 2 NTK each), and never less than the minimum under which the rig is told it
    has no stake (app.orders.service.OrderMinerRunner.stake_problem)."""
    return max(MIN_STAKE_WEI, claim_stake_wei() * claims)


@dataclass(frozen=True)
class StakeStatus:
    miner: str
    """The mining key whose claims the stake covers."""
    payout: str
    """Who pays the stake, owns it and is paid for the work."""
    active_wei: int
    withdrawing_wei: int
    unlock_at: int
    balance_wei: int
    """The payout address's NTK (what can be staked)."""
    eth_wei: int
    """The payout address's coin, for the fee."""
    unbond_delay_s: int
    now: int
    can_pay: bool
    """The wallet account is the payout (only it can stake, unstake and withdraw)."""
    need_wei: int = stake_need_wei()
    claim_wei: int = claim_stake_wei()
    network: str = ""
    native_symbol: str = "ETH"

    @property
    def problem(self) -> str | None:
        """Why buyers grant no claims, as OrderMinerRunner.stake_problem decides it, or None."""
        if self.active_wei < MIN_STAKE_WEI:
            return "no stake on the order market: buyers grant claims only against a stake"
        return None

    @property
    def claims_covered(self) -> int:
        """Claims of a default order the active stake covers at once."""
        return self.active_wei // self.claim_wei if self.claim_wei else 0

    @property
    def short_wei(self) -> int:
        """What is missing to `need_wei` (0 when covered)."""
        return max(0, self.need_wei - self.active_wei)

    @property
    def withdrawable(self) -> bool:
        return self.withdrawing_wei > 0 and self.now >= self.unlock_at

    def summary(self) -> str:
        """One line: "50 NTK staked (covers 25 claims)" and what unbonds."""
        text = f"{ntk_text(self.active_wei, 6)} staked (covers {self.claims_covered} claim(s) of a typical order)"
        if self.withdrawing_wei:
            text += f"; {ntk_text(self.withdrawing_wei, 6)} " + (
                "ready to withdraw" if self.withdrawable else f"unbonding for {delay_text(self.unlock_at - self.now)}")
        return text


def delay_text(seconds: int) -> str:
    """"14 days", "3 h 20 min", "5 min"."""
    s = max(0, int(seconds))
    if s >= 2 * 86_400:
        return f"{s // 86_400} days" + (f" {s % 86_400 // 3600} h" if s % 86_400 >= 3600 else "")
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{max(1, s // 60) if s else 0} min"


def _coin(wei: int, symbol: str) -> str:
    from app.amounts import format_amount

    return f"{format_amount(wei, max_decimals=8)} {symbol}"


def check_stake_amount(text: str, st: StakeStatus) -> int:
    """The NTK to stake in `text`; FieldError("amount", one line) when it is not a positive
    amount, more than the payout's NTK, or over the contract's limit."""
    amount = check_amount(text)
    if amount > st.balance_wei:
        raise FieldError("amount", f"More than your {ntk_text(st.balance_wei, 6)}.")
    if st.active_wei + amount > MAX_STAKE_WEI:
        raise FieldError("amount", "That amount is too large.")
    return amount


def check_unstake_amount(text: str, st: StakeStatus) -> int:
    """The NTK to start unbonding in `text`; FieldError when it is more than the active stake."""
    amount = check_amount(text)
    if amount > st.active_wei:
        raise FieldError("amount", f"More than the {ntk_text(st.active_wei, 6)} staked.")
    return amount


class StakeActions:
    """The stake use cases over callables (each called on the chain thread): `market()` a
    wallet.market.MarketClient, `signer()` the rig's market signer (app.account.MarketSigner:
    `.address` the mining key, `.payout`), `payer()` the unlocked wallet account (ValueError,
    one line, when it cannot sign), `network()` the wallet.networks.Network. *(chain)* for all."""

    def __init__(self, *, market: Callable[[], Any], signer: Callable[[], Any], payer: Callable[[], Any],
                 payer_address: Callable[[], str], network: Callable[[], Any]):
        self._market, self._signer, self._payer, self._payer_address, self._network = (
            market, signer, payer, payer_address, network)

    @classmethod
    def of_wallet(cls, session) -> StakeActions:
        """Over the desktop app's app.account.WalletSession: the rig's signer as the miner uses
        it, the wallet account pays (it must be unlocked)."""
        def payer():
            svc = session.service
            if not svc.is_unlocked():
                raise ValueError("the wallet is locked: unlock it first (Wallet → Unlock…)")
            return svc.signer()

        return cls(market=lambda: session.service.market(), signer=session.market_signer, payer=payer,
                   payer_address=lambda: session.service.address, network=lambda: session.service.network)

    def _om(self):
        from app.orders.service import order_market

        return order_market(self._market())

    def status(self) -> StakeStatus:
        om = self._om()
        sg = self._signer()
        st = om.stake(sg.address, sg.payout)
        chain = om.chain
        net = self._network()
        return StakeStatus(sg.address, sg.payout, st.active_wei, st.withdrawing_wei, st.unlock_at,
                           om.token.balance_of(sg.payout), chain.balance_wei(sg.payout), om.unbond_delay_s(),
                           chain.latest_timestamp(), self._payer_address().lower() == sg.payout.lower(),
                           network=net.name, native_symbol=net.native_symbol)

    def cost(self, action: str, amount_wei: int = 0, st: StakeStatus | None = None) -> CostBreakdown:
        """What `action` ("stake", "unstake", "withdraw") costs: the NTK it moves and its network
        fee at the chain's fees now (app.order_fees.stake_fee: gas x price, the L1 data part apart)."""
        om = self._om()
        st = st or self.status()
        self._checked_payer(self._signer())  # a locked wallet or another account says so before any cost
        net = self._network()
        approve = action == "stake" and om.token.allowance(st.payout, om.address) < amount_wei
        fee = stake_fee(net, action, approve=approve, first=st.active_wei + st.withdrawing_wei == 0, chain=om.chain)
        coin_usd = reference_coin_usd(net.native_symbol)
        if fee.total_wei > st.eth_wei:
            raise ValueError(f"the network fee (about {_coin(fee.total_wei, net.native_symbol)}) is more than the "
                             f"{_coin(st.eth_wei, net.native_symbol)} of {st.payout}: add some for fees first")
        label = "network fee (approval + stake)" if approve else "network fee"
        fees = fee_lines(fee, label, coin_usd=coin_usd)
        delay = delay_text(st.unbond_delay_s)
        if action == "stake":
            lines = (CostLine("stake (from your wallet)", amount_wei, "NTK",
                              note=f"still yours: back {delay} after you unstake"), *fees)
            title = f"Stake {ntk_text(amount_wei, 6)}"
            notes = (f"Buyers grant claims against it; it is slashed only if you claim a shard and never deliver. "
                     f"Taking it back: Unstake, wait {delay}, then Withdraw.",)
        elif action == "unstake":
            lines = (CostLine("start unbonding", amount_wei, "NTK", note="stops covering claims now"), *fees)
            title = f"Unstake {ntk_text(amount_wei, 6)}"
            notes = (f"It can be withdrawn in {delay} (the contract's unbonding delay; a new unstake restarts "
                     "it), and can still be slashed for claims you hold until then.",)
        elif action == "withdraw":
            lines = fees
            title = f"Withdraw {ntk_text(st.withdrawing_wei, 6)}"
            notes = ("The unbonded stake goes back to your wallet.",)
        else:
            raise ValueError(f"unknown stake action {action!r}")
        note = fee_note(fee, coin_usd=coin_usd)
        return CostBreakdown(title, tuple(lines), notes + ((note,) if note else ()))

    def _checked_payer(self, sg):
        payer = self._payer()
        if payer.address.lower() != sg.payout.lower():
            raise ValueError(f"the rig is paid to {sg.payout}: stake from that account")
        return payer

    def stake(self, amount_wei: int) -> StakeStatus:
        """Approve (when the allowance is short) and deposit `amount_wei` for the rig's mining
        key, from the payout account; the new status. ValueError in one line when it cannot."""
        st = self.status()
        if amount_wei <= 0 or amount_wei > st.balance_wei:
            raise FieldError("amount", f"Stake between 0 and your {ntk_text(st.balance_wei, 6)}.")
        sg = self._signer()
        self._om().deposit_stake(self._checked_payer(sg), sg.address, amount_wei)
        return self.status()

    def unstake(self, amount_wei: int) -> StakeStatus:
        """Start unbonding `amount_wei` of the active stake (the contract's delay restarts)."""
        st = self.status()
        if amount_wei <= 0 or amount_wei > st.active_wei:
            raise FieldError("amount", f"Unstake between 0 and the {ntk_text(st.active_wei, 6)} staked.")
        sg = self._signer()
        self._om().request_unstake(self._checked_payer(sg), sg.address, amount_wei)
        return self.status()

    def withdraw(self) -> StakeStatus:
        """Take the unbonded stake back to the payout account (after the delay)."""
        st = self.status()
        if not st.withdrawing_wei:
            raise ValueError("nothing is unbonding: unstake first")
        if not st.withdrawable:
            raise ValueError(f"the stake unbonds for {delay_text(st.unlock_at - st.now)} more")
        sg = self._signer()
        self._om().withdraw_stake(self._checked_payer(sg), sg.address)
        return self.status()
