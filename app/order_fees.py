"""What an order costs in network fees on each network, for a buyer and a miner to see before
they use one: the happy path per shard (its share of the one posting transaction and of a
redeem transaction that carries many orders' vouchers), and that as a share of the shard's
reward. Offline: the measured gas table (wallet.fees.ORDER_GAS, bench/bench_order_gas.py),
each network's reference fee and, on OP-stack networks, the L1 data fee's upper bound.

Money: the coin's USD price from resources/data/coin_prices.json (a planning figure), NTK's
from Settings → Earnings (ntk_usd). Pure functions; safe from any thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.resources import resource_path
from wallet.fees import fee_share, happy_path_per_shard, offline_cost
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
    post = offline_cost(net, "post_order") + offline_cost(net, "approve")
    silent = offline_cost(net, "submit_result") + offline_cost(net, "release")
    share = None if coin_usd is None else fee_share(per.total_wei, coin_usd, reward_each_wei, ntk_usd)
    return OrderFee(net.name, net.native_symbol, per.total_wei, post.total_wei, silent.total_wei, coin_usd, share)
