"""What an order costs in network fees on each network, for a buyer and a miner to see before
they use one: the happy path per shard (its share of the one posting transaction and of a
redeem transaction that carries many orders' vouchers), and that as a share of the shard's
reward. Offline: the measured gas table (wallet.fees.ORDER_GAS, bench/bench_order_gas.py),
each network's reference fee and, on OP-stack networks, the L1 data fee's upper bound.

Connected (`chain` given), the same table is priced at the chain's own fees now: its base and
priority fee and, on OP-stack networks, its L1Block's L1 prices (`chain_fees`). `post_fee`,
`stake_fee` and `fee_lines` are what every face shows before a transaction (`kminer market
fees`, the GUI's confirmations), so the CLI and the GUI say the same figure.

Money: the coin's USD price from resources/data/coin_prices.json (a planning figure), NTK's
from Settings → Earnings (ntk_usd). Pure functions (those taking a chain: *(chain)*, on the
chain's thread).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from collections.abc import Iterable

from app.amounts import eth_text
from app.costs import CostLine, usd_text
from app.resources import resource_path
from wallet.fees import Cost, FeeEstimator, GasPrice, L1Params, fee_share, happy_path_per_shard, offline_cost
from wallet.networks import Network

DEFAULT_SHARDS = 4
DEFAULT_REWARD_WEI = 10 * 10**18
"""The app's default render order: 200 frames in 4 shards, 10 NTK a shard (ui/orders_view.py)."""
ORDERS_PER_REDEEM = 10
"""A miner redeems the vouchers of about this many orders in one transaction."""


@dataclass(frozen=True)
class OrderFee:
    network: str
    coin: str
    per_shard_wei: int
    """Fees of the happy path per shard, all parties, in the coin's wei."""
    post_wei: int
    """The buyer's posting transaction (approval included: first order)."""
    silent_buyer_wei: int
    """The miner's extra when a buyer goes silent: submit + release, per shard."""
    coin_usd: float | None
    share: float | None
    """per_shard as a fraction of the shard's reward (None without a coin price)."""

    @property
    def per_shard_usd(self) -> float | None:
        return None if self.coin_usd is None else self.per_shard_wei / 10**18 * self.coin_usd


def coin_prices() -> dict[str, float | None]:
    doc = json.loads(resource_path("data", "coin_prices.json").read_text(encoding="utf-8"))
    return {k: (float(v) if v is not None else None) for k, v in doc["usd"].items()}


def order_fee(net: Network, *, shards: int = DEFAULT_SHARDS, reward_each_wei: int = DEFAULT_REWARD_WEI,
              ntk_usd: float = 0.01, coin_usd: float | None = None) -> OrderFee:
    """The fee figures of an order of `shards` shards on `net` (its reference base fee)."""
    if coin_usd is None:
        coin_usd = coin_prices().get(net.native_symbol)
    per = happy_path_per_shard(net, shards, orders_per_redeem=ORDERS_PER_REDEEM)
    post = post_fee(net)
    silent = offline_cost(net, "submit_result") + offline_cost(net, "release")
    share = None if coin_usd is None else fee_share(per.total_wei, coin_usd, reward_each_wei, ntk_usd)
    return OrderFee(net.name, net.native_symbol, per.total_wei, post.total_wei, silent.total_wei, coin_usd, share)


# --- one transaction's fee, offline or at a connected chain's fees --------------------------

@dataclass(frozen=True)
class ChainFees:
    """What a chain charges now: gas price and (OP stack) L1 prices; None: the network's
    reference figures (offline)."""

    price: GasPrice | None = None
    l1: L1Params | None = None


def chain_fees(net: Network, chain=None) -> ChainFees:
    """The fees `chain` (a wallet.chain.Chain on `net`) charges now; offline without one. *(chain)*"""
    if chain is None:
        return ChainFees()
    est = FeeEstimator(chain, net)
    return ChainFees(est.gas_price(), est.l1_params())


def actions_fee(net: Network, actions: Iterable[str], fees: ChainFees = ChainFees()) -> Cost:
    """The sum of the measured actions' costs (wallet.fees.ORDER_GAS names) at `fees`:
    gas x price plus, on OP-stack networks, the L1 data fee's upper bound for each."""
    total: Cost | None = None
    for a in actions:
        c = offline_cost(net, a, price=fees.price, l1=fees.l1)
        total = c if total is None else total + c
    if total is None:
        raise ValueError("no action to price")
    return total


def post_fee(net: Network, *, chain=None) -> Cost:
    """Posting an order with its token approval (the buyer's one transaction pair): at the
    network's reference fees, or at `chain`'s fees now. *(chain)*"""
    return actions_fee(net, ("approve", "post_order"), chain_fees(net, chain))


STAKE_ACTIONS = {"stake": "stake_more", "stake_first": "stake_first", "unstake": "unstake",
                 "withdraw": "withdraw_stake"}


def stake_fee(net: Network, action: str, *, approve: bool = False, first: bool = False, chain=None) -> Cost:
    """A stake transaction on the order market ("stake", "unstake" or "withdraw"); a stake adds
    its token approval when the allowance is short (`approve`) and costs more the first time
    (`first`: a new (mining key, payout) pair). *(chain)*"""
    if action not in ("stake", "unstake", "withdraw"):
        raise ValueError(f"unknown stake action {action!r}")
    key = STAKE_ACTIONS["stake_first" if action == "stake" and first else action]
    return actions_fee(net, (("approve",) if approve and action == "stake" else ()) + (key,), chain_fees(net, chain))


def fee_lines(cost: Cost, label: str, *, coin_usd: float | None = None) -> tuple[CostLine, ...]:
    """A fee as confirmation lines: gas x price, and the L1 data fee apart where there is one
    (OP stack), each with its value in USD when the coin has a price."""
    coin = cost.native_symbol
    paid = "" if coin == "ETH" else f"paid in {coin}; "
    per_gas = cost.execution_wei // cost.gas if cost.gas else 0
    usd = usd_text(cost.execution_wei, coin_usd)
    out = [CostLine(label, cost.execution_wei, "ETH", estimate=True,
                    note=f"{paid}{cost.gas:,} gas × {_gwei(per_gas)} gwei" + (f", {usd}" if usd else ""))]
    if cost.l1_fee_wei:
        usd = usd_text(cost.l1_fee_wei, coin_usd)
        out.append(CostLine("L1 data fee (OP stack)", cost.l1_fee_wei, "ETH", estimate=True,
                            note="at most; posting the transaction's data to Ethereum" + (f", {usd}" if usd else "")))
    return tuple(out)


def fee_note(cost: Cost, *, coin_usd: float | None = None) -> str:
    """One sentence: the whole fee in the coin and in USD ("" when the coin has no price)."""
    usd = usd_text(cost.total_wei, coin_usd)
    if not usd:
        return ""
    coin = cost.native_symbol
    return (f"Network fee in all: {usd} ({eth_text(cost.total_wei, 8).replace('ETH', coin)} at ${coin_usd:,.0f} per "
            f"{coin}, a planning price).")


def _gwei(wei: int) -> str:
    g = wei / 10**9
    return f"{g:.4g}"
