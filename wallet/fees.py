"""What a market action costs: gas, the chain's coin (wei), and the user's currency.

`FeeEstimator.quote(account, fn)` prices one real transaction before it is sent: its gas
(the node's estimate, or the embedded chain's table), the current base and priority fee,
and on OP-stack chains (Base, OP Mainnet) the L1 data fee for its size, read from the chain
(the GasPriceOracle predeploy where it exists, else the L1Block predeploy's values with the
Fjord formula and FastLZ, as the node charges it). Arbitrum folds its L1 cost into the gas
it estimates.
`ORDER_GAS` holds measured gas per action (bench/bench_order_gas.py, steady state) so an
order's cost per shard can be shown before anything is built, offline too (`offline_cost`).
Amounts are integers in wei; only `Cost.in_currency` gives a float, for display.
"""

from __future__ import annotations

from dataclasses import dataclass

from wallet.chain import DEFAULT_PRIORITY_FEE_WEI, Chain
from wallet.networks import Network

GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F"
L1_BLOCK = "0x4200000000000000000000000000000000000015"
_L1_BASE_FEE_SLOT, _L1_SCALARS_SLOT, _L1_BLOB_BASE_FEE_SLOT = 1, 3, 7
FJORD_MIN_SIZE = 100
FJORD_INTERCEPT = -42_585_600
FJORD_FASTLZ_COEF = 836_500
SIGNATURE_OVERHEAD_BYTES = 68
"""What the oracle adds to an unsigned transaction's size for its signature."""

ORDER_GAS = {
    "approve": 46_000,
    "post_order": 112_000,
    "post_order_per_uri_byte": 24,
    "claim_onchain": 54_800,
    "submit_result": 70_000,
    "release": 66_000,
    "reject": 48_800,
    "redeem_base": 67_550,
    "redeem_per_voucher": 18_700,
    "redeem_per_shard": 190,
    "redeem_per_payee": 30_000,
    "refund": 53_000,
    "slash": 95_000,
    "stake_first": 84_500,
    "stake_more": 50_300,
    "unstake": 31_000,
    "withdraw_stake": 47_500,
}
"""Gas per action, measured with bench/bench_order_gas.py (anvil and py-evm agree to a few gas)
in steady state: every slot the action writes already non-zero once (an address's very first
action costs up to ~20 k more per new slot) and the buyer's allowance standing. A redeem costs
redeem_base (one voucher, one payee) + redeem_per_voucher per further voucher + redeem_per_shard
per shard paid + redeem_per_payee per further payee (the last an estimate, not measured).
Stakes: stake_first is a (mining key, payout) pair's first deposit (a new slot), stake_more
adds to a stake; unstake starts unbonding; withdraw_stake takes the unlocked part back."""
ORDER_TX_BYTES = {"post_order": 450, "claim_onchain": 180, "submit_result": 420, "release": 280, "reject": 340,
                  "redeem_base": 150, "redeem_per_voucher": 260, "refund": 110, "slash": 300, "approve": 150,
                  "stake_first": 120, "stake_more": 120, "unstake": 120, "withdraw_stake": 90}
"""Unsigned transaction sizes in bytes (typical, from the bench), for the offline L1 data fee."""


@dataclass(frozen=True)
class GasPrice:
    base_fee_wei: int
    priority_fee_wei: int

    @property
    def per_gas_wei(self) -> int:
        return self.base_fee_wei + self.priority_fee_wei


@dataclass(frozen=True)
class L1Params:
    """The OP-stack L1 data fee parameters (Ecotone and later; scalars scaled by 1e6)."""

    l1_base_fee_wei: int
    blob_base_fee_wei: int
    base_fee_scalar: int
    blob_base_fee_scalar: int

    def fee_upper_bound_wei(self, unsigned_tx_bytes: int) -> int:
        """The Fjord L1 fee for a transaction of this size, assuming it does not compress
        (the oracle's getL1FeeUpperBound)."""
        size = unsigned_tx_bytes + SIGNATURE_OVERHEAD_BYTES
        return self.fee_for_compressed_wei(size + size // 255 + 16)

    def fee_wei(self, unsigned_tx: bytes) -> int:
        """The Fjord L1 fee of an unsigned transaction (the oracle's getL1Fee): its FastLZ
        size plus the signature's 68 bytes."""
        return self.fee_for_compressed_wei(flz_compress_len(unsigned_tx) + SIGNATURE_OVERHEAD_BYTES)

    def fee_for_compressed_wei(self, fastlz_size: int) -> int:
        """Fjord: the Brotli size estimated from the FastLZ size (a linear fit, at least 100
        bytes) times the scaled L1 prices (base fee x 16 x scalar + blob fee x scalar) / 1e12."""
        est = max(FJORD_MIN_SIZE * 10**6, FJORD_INTERCEPT + FJORD_FASTLZ_COEF * fastlz_size)
        scaled = self.base_fee_scalar * 16 * self.l1_base_fee_wei + self.blob_base_fee_scalar * self.blob_base_fee_wei
        return est * scaled // 10**12


def flz_compress_len(data: bytes) -> int:
    """Length of `data` compressed with FastLZ level 1 as the OP stack counts it (Fjord; the
    reference is solady's flzCompress): a 13-bit table of 3-byte sequences hashed with 32-bit
    wrap-around, matches up to 8191 bytes back, literal runs of at most 32 bytes."""
    n = len(data)
    limit = n - 13 if n >= 13 else 0
    table = [0] * 8192

    def seq(i: int) -> int:
        return data[i] | data[i + 1] << 8 | data[i + 2] << 16

    def slot(v: int) -> int:
        return (((v * 2654435769) & 0xFFFFFFFF) >> 19) & 0x1FFF

    def literals(count: int, size: int) -> int:
        size += 0x21 * (count // 0x20)
        rest = count % 0x20
        return size + rest + 1 if rest else size

    idx, anchor, size = 2, 0, 0
    while idx < limit:
        while True:
            v = seq(idx)
            h = slot(v)
            ref, table[h] = table[h], idx
            distance = idx - ref
            if idx >= limit:
                break
            idx += 1
            if distance < 8192 and v == seq(ref):
                break
        if idx >= limit:
            break
        idx -= 1
        if idx > anchor:
            size = literals(idx - anchor, size)
        same, bound = 0, limit + 9 - (idx + 3)  # bytes equal beyond the 3 that matched
        while same < bound and data[ref + 3 + same] == data[idx + 3 + same]:
            same += 1
        step = same + 1 if same < bound else bound  # the reference counts the mismatching byte too
        size += 3 * ((step - 1) // 262) + (3 if (step - 1) % 262 >= 6 else 2)
        idx += step
        table[slot(seq(idx))] = idx
        idx += 1
        table[slot(seq(idx))] = idx
        idx += 1
        anchor = idx
    return literals(n - anchor, size)


@dataclass(frozen=True)
class Cost:
    """One action's cost: execution (gas x price) plus the L1 data fee, in the chain's coin."""

    action: str
    gas: int
    execution_wei: int
    l1_fee_wei: int
    native_symbol: str = "ETH"

    @property
    def total_wei(self) -> int:
        return self.execution_wei + self.l1_fee_wei

    def in_currency(self, native_price: float) -> float:
        """The cost in the user's currency, given the price of one coin (ETH, POL) in it."""
        return self.total_wei / 10**18 * native_price

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(f"{self.action}+{other.action}", self.gas + other.gas, self.execution_wei + other.execution_wei,
                    self.l1_fee_wei + other.l1_fee_wei, self.native_symbol)

    def scaled(self, num: int, den: int, action: str | None = None) -> "Cost":
        """This cost times num/den (e.g. a batch's share for one shard)."""
        return Cost(action or self.action, self.gas * num // den, self.execution_wei * num // den,
                    self.l1_fee_wei * num // den, self.native_symbol)


def fee_share(cost_wei: int, native_price: float, reward_wei: int, token_price: float) -> float:
    """What a cost is as a fraction of a reward, both valued in the same currency."""
    reward = reward_wei / 10**18 * token_price
    return float("inf") if reward <= 0 else (cost_wei / 10**18 * native_price) / reward


class FeeEstimator:
    """Prices actions on one connected chain (threading: as the `Chain`)."""

    def __init__(self, chain: Chain, network: Network):
        self.chain = chain
        self.network = network
        self._oracle: bool | None = None

    def gas_price(self) -> GasPrice:
        base = int(self.chain.read(lambda: self.chain.w3.eth.get_block("latest").get("baseFeePerGas", 0)))
        if self.chain.embedded:
            return GasPrice(base, DEFAULT_PRIORITY_FEE_WEI)
        try:
            prio = int(self.chain.read(lambda: self.chain.w3.eth.max_priority_fee))
        except Exception:
            prio = DEFAULT_PRIORITY_FEE_WEI
        return GasPrice(base, prio)

    def l1_params(self) -> L1Params | None:
        """The L1 data fee parameters on an OP-stack chain, read from its L1Block predeploy."""
        if not self.network.op_stack:
            return None

        def slot(i: int) -> int:
            return int.from_bytes(bytes(self.chain.read(lambda: self.chain.w3.eth.get_storage_at(L1_BLOCK, i))), "big")

        scalars = slot(_L1_SCALARS_SLOT)
        return L1Params(l1_base_fee_wei=slot(_L1_BASE_FEE_SLOT), blob_base_fee_wei=slot(_L1_BLOB_BASE_FEE_SLOT),
                        base_fee_scalar=(scalars >> 96) & 0xFFFFFFFF, blob_base_fee_scalar=(scalars >> 64) & 0xFFFFFFFF)

    def l1_fee_wei(self, unsigned_tx: bytes) -> int:
        """The L1 data fee of an unsigned transaction (0 off OP-stack chains): the oracle's own
        getL1Fee where the predeploy exists, else the Fjord formula on L1Block's values."""
        if not self.network.op_stack:
            return 0
        if self._oracle is None:
            self._oracle = bool(self.chain.read(lambda: self.chain.w3.eth.get_code(GAS_PRICE_ORACLE)))
        if self._oracle:
            from eth_abi import decode, encode
            from eth_utils import keccak

            data = keccak(text="getL1Fee(bytes)")[:4] + encode(["bytes"], [unsigned_tx])
            raw = self.chain.read(lambda: self.chain.w3.eth.call({"to": GAS_PRICE_ORACLE, "data": data}))
            return int(decode(["uint256"], bytes(raw))[0])
        params = self.l1_params()
        return params.fee_wei(unsigned_tx) if params else 0

    def cost(self, action: str, gas: int, unsigned_tx: bytes, price: GasPrice | None = None) -> Cost:
        price = price or self.gas_price()
        return Cost(action, gas, gas * price.per_gas_wei, self.l1_fee_wei(unsigned_tx), self.network.native_symbol)

    def quote(self, sender: str, fn, *, action: str, gas: int | None = None) -> Cost:
        """Price the transaction `fn` (a web3 ContractFunction) from `sender` as it would be
        sent now: the node's gas estimate (or `gas`), today's fees, its L1 data fee."""
        price = self.gas_price()
        if gas is None:
            gas = int(self.chain.read(lambda: fn.estimate_gas({"from": sender})))
        nonce = int(self.chain.read(lambda: self.chain.w3.eth.get_transaction_count(sender, "pending")))
        built = fn.build_transaction({"from": sender, "gas": gas, "nonce": nonce, "chainId": self.chain.chain_id,
                                      "maxFeePerGas": 2 * price.base_fee_wei + price.priority_fee_wei,
                                      "maxPriorityFeePerGas": price.priority_fee_wei})
        return self.cost(action, gas, unsigned_tx(built), price)


def unsigned_tx(tx: dict) -> bytes:
    """The unsigned EIP-1559 transaction `tx` as bytes (0x02 || rlp), what the L1 fee is on."""
    import rlp
    from eth_utils import to_bytes

    data = tx.get("data") or b""
    data = to_bytes(hexstr=data) if isinstance(data, str) else bytes(data)
    to = to_bytes(hexstr=tx["to"]) if tx.get("to") else b""
    fields = [tx["chainId"], tx["nonce"], tx["maxPriorityFeePerGas"], tx["maxFeePerGas"], tx["gas"], to,
              tx.get("value", 0), data, []]
    return b"\x02" + rlp.encode(fields)


def offline_cost(network: Network, action: str, *, count: int = 1, gas: int | None = None,
                 tx_bytes: int | None = None, base_fee_gwei: float | None = None, priority_fee_gwei: float = 0.001,
                 l1: L1Params | None = None, price: GasPrice | None = None) -> Cost:
    """An action's cost from the measured table and the network's reference fees, for when no
    node is connected (`count` times the action; `gas` and `tx_bytes` override the tables; the
    L1 data fee is the uncompressed upper bound). `price` (read from a node: FeeEstimator.gas_price)
    and `l1` (FeeEstimator.l1_params) replace the reference fees with the chain's own."""
    g = (ORDER_GAS[action] if gas is None else gas) * count
    if price is not None:
        per_gas = price.per_gas_wei
    else:
        fee = network.typical_base_fee_gwei if base_fee_gwei is None else base_fee_gwei
        if fee is None:
            raise ValueError(f"no reference base fee for {network.name}: give base_fee_gwei")
        per_gas = int(round((fee + priority_fee_gwei) * 10**9))
    l1_wei = 0
    if network.op_stack:
        size = tx_bytes if tx_bytes is not None else ORDER_TX_BYTES.get(action, 300)
        l1_wei = (l1 or REFERENCE_L1).fee_upper_bound_wei(size) * count
    return Cost(action, g, g * per_gas, l1_wei, network.native_symbol)


def happy_path_per_shard(network: Network, shards: int, *, orders_per_redeem: int = 10, payees: int = 1,
                         **fees) -> Cost:
    """What one shard of a `shards`-shard order costs on the happy path, all parties: its share
    of the post, and of a redeem transaction carrying `orders_per_redeem` orders' vouchers
    (`payees` miners per order, each redeeming its own). `fees` go to `offline_cost`."""
    post = offline_cost(network, "post_order", **fees)
    redeem_gas = (ORDER_GAS["redeem_base"] + ORDER_GAS["redeem_per_voucher"] * (orders_per_redeem - 1)
                  + ORDER_GAS["redeem_per_shard"] * shards * orders_per_redeem)
    redeem_bytes = ORDER_TX_BYTES["redeem_base"] + ORDER_TX_BYTES["redeem_per_voucher"] * orders_per_redeem
    redeem = offline_cost(network, "redeem_base", gas=redeem_gas, tx_bytes=redeem_bytes, **fees)
    per_order = post + redeem.scaled(payees, orders_per_redeem)
    return per_order.scaled(1, shards, action=f"happy path per shard ({shards}-shard order)")


REFERENCE_L1 = L1Params(l1_base_fee_wei=1_000_000_000, blob_base_fee_wei=1, base_fee_scalar=2269,
                        blob_base_fee_scalar=1_055_000)
"""Assumed OP-stack L1 parameters for offline estimates: an L1 base fee of 1 gwei, the
minimum blob base fee, and Base's Ecotone scalars (2269 / 1,055,000, as set in 2024 — an
assumption, not read from the chain); a connected estimator reads the real ones."""
