"""Client of the OrderMarket contract: orders with one escrow, settled by signed messages.

`OrderMarketClient` sends every transaction the protocol has (post, on-chain claim, the
silent-buyer fallback, rejection, redemption of vouchers, refund, slashes, stakes) and reads
orders, records, stakes and the public counters. Messages are signed with `sign` under this
deployment's EIP-712 domain (see wallet.order_messages). Tokens are approved first when the
allowance is short. Refusals come back as `ContractRevert` with the contract's error name.
Amounts are token base units (wei); times are unix seconds (block timestamps).
Threading: as the `Chain` (one thread at a time).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from web3.logs import DISCARD

from wallet import artifacts
from wallet.chain import Chain, TxResult
from wallet.market import JOB_KINDS, KIND_NAMES, _hash32, _hex, _kind
from wallet.order_messages import (
    Claim, Domain, Message, ResultAck, ResultCommit, Signed, Voucher, key_hash, merge_vouchers,
)
from wallet.token import TokenClient

ZERO_ADDRESS = "0x" + "00" * 20
REDEEM_BATCH = 200
"""Vouchers per redeem transaction (~25 k gas each at most: 5 M gas, well inside a block)."""
GAS = {"post": 250_000, "claim": 120_000, "submit": 200_000, "release": 150_000, "reject": 150_000,
       "refund": 120_000, "slash": 150_000, "demand": 150_000, "answer": 150_000, "reveal": 80_000,
       "stake": 120_000, "redeem_base": 80_000, "redeem_each": 50_000}
"""Gas limits on the embedded chain (it does not estimate); other chains estimate each call."""


class RecordStatus:
    NONE, SUBMITTED, REJECTED, RELEASED, SLASHED, KEY_DEMANDED, KEY_REVEALED, DEMAND_VOIDED = range(8)
    NAMES = ("none", "submitted", "rejected", "released", "slashed", "key demanded", "key revealed", "demand voided")


@dataclass(frozen=True)
class OrderTerms:
    """What a buyer posts (at most 128 shards). `signed_shards` of the shards (the first ones)
    are claimed by a buyer-signed grant, the rest on chain (default: all by signature). A
    claim's stake is `stake_bps` basis points of the reward (2,000 = a fifth of it)."""

    kind: str
    spec_hash: str | bytes
    spec_uri: str
    shards: int
    reward_each_wei: int
    deadline: int
    review_window_s: int
    redeem_window_s: int
    stake_bps: int = 0
    signed_shards: int | None = None

    def as_tuple(self) -> tuple:
        signed = self.shards if self.signed_shards is None else self.signed_shards
        return (_kind(self.kind), _hash32(self.spec_hash), self.spec_uri, self.shards, signed, self.reward_each_wei,
                self.stake_bps, self.deadline, self.review_window_s, self.redeem_window_s)

    @property
    def escrow_wei(self) -> int:
        return self.reward_each_wei * self.shards

    @property
    def stake_each_wei(self) -> int:
        return self.reward_each_wei * self.stake_bps // 10_000


@dataclass(frozen=True)
class Order:
    order_id: int
    buyer: str
    deadline: int
    review_window_s: int
    redeem_window_s: int
    closed: bool
    paid_bits: int
    reward_each_wei: int
    shards: int
    signed_shards: int
    stake_bps: int
    hold_until: int
    """The order may be closed (refunded) after this time."""

    @property
    def stake_each_wei(self) -> int:
        return self.reward_each_wei * self.stake_bps // 10_000

    @property
    def paid_shards(self) -> list[int]:
        return [i for i in range(self.shards) if self.paid_bits >> i & 1]

    def is_paid(self, shard: int) -> bool:
        return bool(self.paid_bits >> shard & 1)

    @property
    def escrow_wei(self) -> int:
        """What the order still holds for its unpaid shards (0 once closed)."""
        return 0 if self.closed else self.reward_each_wei * (self.shards - bin(self.paid_bits).count("1"))


@dataclass(frozen=True)
class PostedOrder:
    """An order as its `OrderPosted` event tells it (the spec's hash and URI live only there)."""

    order_id: int
    buyer: str
    kind: str
    spec_hash: str
    spec_uri: str
    shards: int
    signed_shards: int
    reward_each_wei: int
    stake_each_wei: int
    deadline: int
    review_window_s: int
    redeem_window_s: int
    block: int


@dataclass(frozen=True)
class Record:
    status: int
    at: int
    commit: str

    @property
    def status_name(self) -> str:
        return RecordStatus.NAMES[self.status]


@dataclass(frozen=True)
class Stake:
    active_wei: int
    withdrawing_wei: int
    unlock_at: int


@dataclass(frozen=True)
class Stats:
    """Public counters: as buyer (orders, shards posted, rejections made) and as payout
    address (shards paid, rejections received, slashes)."""

    address: str
    orders_posted: int
    shards_posted: int
    rejections_made: int
    shards_paid: int
    rejections_received: int
    slashes: int

    @property
    def rejection_rate(self) -> float:
        """Rejections this buyer made per shard it posted (0.0 for a new buyer)."""
        return self.rejections_made / self.shards_posted if self.shards_posted else 0.0


@dataclass(frozen=True)
class Redemption:
    """One redeem transaction: what it paid (wei) and the shards newly paid per (order, payee)."""

    tx: TxResult
    paid_wei: int
    fresh: dict[tuple[int, str], int] = field(default_factory=dict)


class OrderMarketClient:
    def __init__(self, chain: Chain, address: str, *, token_address: str | None = None):
        self.chain = chain
        w3 = chain.w3
        self.contract = w3.eth.contract(address=w3.to_checksum_address(address), abi=artifacts.load("OrderMarket").abi_list())
        self.address = self.contract.address
        self.domain = Domain(chain.chain_id, self.address)
        self.token = TokenClient(chain, token_address or chain.call(self.contract.functions.token()))

    # --- messages -----------------------------------------------------------------------

    def sign(self, message: Message, account) -> Signed:
        """Sign `message` under this deployment's domain (chain id + contract address)."""
        return message.sign(account, self.domain)

    # --- buyer --------------------------------------------------------------------------

    def post_order(self, account, terms: OrderTerms, *, approve_wei: int | None = None) -> tuple[int, TxResult]:
        """Escrow `shards * reward_each_wei` and post the order; returns (order id, tx). When
        the allowance is short it approves `approve_wei` (a spending cap the user accepted,
        which spares an approval per order), else the escrow alone."""
        self.token.ensure_allowance(account, self.address, max(terms.escrow_wei, approve_wei or 0))
        res = self._tx(account, self.contract.functions.postOrder(terms.as_tuple()), "post", "posting the order")
        ev = self.contract.events.OrderPosted().process_receipt(res.receipt, errors=DISCARD)
        return int(ev[0]["args"]["orderId"]), res

    def reject(self, account, claim: Claim, result_hash: bytes | str, result_key_hash: bytes | str,
               evidence_hash: bytes | str, evidence_uri: str) -> TxResult:
        """Reject a result the miner submitted on chain (within its review window)."""
        fn = self.contract.functions.reject(_claim(claim), _hash32(result_hash), _hash32(result_key_hash),
                                            _hash32(evidence_hash), evidence_uri)
        return self._tx(account, fn, "reject", f"rejecting shard {claim.shard} of order {claim.order_id}")

    def refund(self, account, order_id: int) -> TxResult:
        """Close the order after its windows: the unpaid escrow returns to the buyer."""
        return self._tx(account, self.contract.functions.refund(order_id), "refund", f"refunding order {order_id}")

    def slash(self, account, confirmed: Signed | Claim) -> TxResult:
        """Slash a no-show: the miner-confirmed claim (a `Signed[Claim]`), or a bare `Claim`
        for an on-chain claim."""
        claim, sig = _split(confirmed)
        return self._tx(account, self.contract.functions.slash(_claim(claim), sig), "slash",
                        f"slashing the claim on shard {claim.shard} of order {claim.order_id}")

    def demand_key(self, account, commit: Signed) -> TxResult:
        """Demand the content key of a shard paid by voucher (the miner's signed ResultCommit)."""
        rc: ResultCommit = commit.message
        if not isinstance(rc, ResultCommit):
            raise ValueError("expected a signed ResultCommit")
        fn = self.contract.functions.demandKey(_result(rc), commit.signature)
        return self._tx(account, fn, "demand", f"demanding the key of shard {rc.shard} of order {rc.order_id}")

    def slash_for_key(self, account, commit: ResultCommit) -> TxResult:
        fn = self.contract.functions.slashForKey(commit.order_id, commit.shard, commit.miner, commit.payout,
                                                 commit.result_key_hash)
        return self._tx(account, fn, "slash", f"slashing for the key of shard {commit.shard} of order {commit.order_id}")

    # --- miner --------------------------------------------------------------------------

    def claim_onchain(self, account, order_id: int, shard: int, payout: str) -> TxResult:
        """Claim a shard at or above the order's `signed_shards` on chain (the sender is the
        mining key; its stake for `payout` must cover the order's stake)."""
        fn = self.contract.functions.claimShard(order_id, shard, self.chain.w3.to_checksum_address(payout))
        return self._tx(account, fn, "claim", f"claiming shard {shard} of order {order_id}")

    def submit_result(self, account, grant: Signed | Claim, result_hash: bytes | str, result_key_hash: bytes | str,
                      ack: Signed | None = None) -> TxResult:
        """The silent-buyer fallback: the buyer's grant (or the on-chain claim, a bare
        `Claim`) and the result commitment; after the deadline also the buyer's `ResultAck`."""
        claim, sig = _split(grant)
        if ack is not None and not isinstance(ack.message, ResultAck):
            raise ValueError("ack must be a signed ResultAck")
        fn = self.contract.functions.submitResult(_claim(claim), sig, _hash32(result_hash), _hash32(result_key_hash),
                                                  ack.signature if ack else b"")
        return self._tx(account, fn, "submit", f"submitting shard {claim.shard} of order {claim.order_id} on chain")

    def release(self, account, claim: Claim, result_hash: bytes | str, key: bytes) -> TxResult:
        """After the review window: paid to the claim's payout against the content key."""
        fn = self.contract.functions.release(_claim(claim), _hash32(result_hash), _hash32(key))
        return self._tx(account, fn, "release", f"releasing shard {claim.shard} of order {claim.order_id}")

    def reveal_key(self, account, commit: ResultCommit, key: bytes) -> TxResult:
        fn = self.contract.functions.revealKey(commit.order_id, commit.shard, commit.miner, commit.payout, _hash32(key))
        return self._tx(account, fn, "reveal", f"revealing the key of shard {commit.shard} of order {commit.order_id}")

    def answer_demand(self, account, commit: ResultCommit, *, other_voucher: Signed | None = None,
                      other_miner: str | None = None) -> TxResult:
        """Void a key demand: the shard was paid to another payee (their voucher) or released
        to another miner."""
        if (other_voucher is None) == (other_miner is None):
            raise ValueError("give either the other payee's voucher or the other miner")
        v = other_voucher.message if other_voucher else Voucher(0, ZERO_ADDRESS, 0)
        fn = self.contract.functions.answerDemand(
            commit.order_id, commit.shard, commit.miner, commit.payout, commit.result_key_hash,
            (v.order_id, v.payee, v.shards), other_voucher.signature if other_voucher else b"",
            self.chain.w3.to_checksum_address(other_miner) if other_miner else ZERO_ADDRESS)
        return self._tx(account, fn, "answer", f"answering the key demand on shard {commit.shard}")

    def redeemable(self, vouchers: list[Signed]) -> list[Signed]:
        """The vouchers worth redeeming now: newest per (order, payee), of open orders, paying
        at least one shard not paid yet (reads only; saves gas on dead vouchers)."""
        newest: dict[tuple[int, str], Signed] = {}
        for s in vouchers:
            v: Voucher = s.message
            cur = newest.get((v.order_id, v.payee))
            if cur is None or v.covers(cur.message):
                newest[(v.order_id, v.payee)] = s
        out = []
        orders: dict[int, Order] = {}
        for s in newest.values():
            v = s.message
            o = orders.get(v.order_id) or orders.setdefault(v.order_id, self.order(v.order_id))
            if not o.closed and v.shards & ~o.paid_bits:
                out.append(s)
        return sorted(out, key=lambda s: (s.message.payee, s.message.order_id))

    def redeem(self, account, vouchers: list[Signed], *, batch: int = REDEEM_BATCH) -> list[Redemption]:
        """Redeem buyer-signed vouchers, `batch` per transaction, grouped by payee (one token
        transfer per payee per transaction). Anyone may send it; the money goes to the payees."""
        ordered = sorted(vouchers, key=lambda s: (s.message.payee, s.message.order_id))
        out = []
        for i in range(0, len(ordered), batch):
            part = ordered[i:i + batch]
            fn = self.contract.functions.redeem([(s.message.order_id, s.message.payee, s.message.shards) for s in part],
                                                [s.signature for s in part])
            gas = GAS["redeem_base"] + GAS["redeem_each"] * len(part)
            res = self.chain.transact(account, fn, gas=gas if self.chain.embedded else None,
                                      what=f"redeeming {len(part)} voucher(s)")
            fresh: dict[tuple[int, str], int] = {}
            paid = 0
            for e in self.contract.events.VoucherRedeemed().process_receipt(res.receipt, errors=DISCARD):
                a = e["args"]
                fresh[(int(a["orderId"]), a["payee"])] = int(a["shards"])
                paid += int(a["amount"])
            out.append(Redemption(res, paid, fresh))
        return out

    # --- stakes -------------------------------------------------------------------------

    def deposit_stake(self, account, miner: str, amount_wei: int) -> TxResult:
        """Stake for mining key `miner`, paid from (and owned by) `account`, the payout address."""
        self.token.ensure_allowance(account, self.address, amount_wei)
        fn = self.contract.functions.depositStake(self.chain.w3.to_checksum_address(miner), amount_wei)
        return self._tx(account, fn, "stake", "depositing stake")

    def request_unstake(self, account, miner: str, amount_wei: int) -> TxResult:
        fn = self.contract.functions.requestUnstake(self.chain.w3.to_checksum_address(miner), amount_wei)
        return self._tx(account, fn, "stake", "starting to withdraw stake")

    def withdraw_stake(self, account, miner: str) -> TxResult:
        fn = self.contract.functions.withdrawStake(self.chain.w3.to_checksum_address(miner))
        return self._tx(account, fn, "stake", "withdrawing stake")

    # --- reads --------------------------------------------------------------------------

    def order_count(self) -> int:
        return int(self.chain.call(self.contract.functions.orderCount()))

    def order(self, order_id: int) -> Order:
        (buyer, deadline, review, redeem, closed, paid, reward, shards, signed, stake_bps, hold) = self.chain.call(
            self.contract.functions.getOrder(order_id), what=f"reading order {order_id}")
        return Order(order_id, buyer, int(deadline), int(review), int(redeem), bool(closed), int(paid), int(reward),
                     int(shards), int(signed), int(stake_bps), int(hold))

    def record(self, order_id: int, shard: int, miner: str) -> Record:
        commit, at, status = self.chain.call(self.contract.functions.getRecord(
            order_id, shard, self.chain.w3.to_checksum_address(miner)))
        return Record(int(status), int(at), _hex(commit))

    def stake(self, miner: str, payout: str) -> Stake:
        w3 = self.chain.w3
        active, withdrawing, unlock = self.chain.call(self.contract.functions.stakeOf(
            w3.to_checksum_address(miner), w3.to_checksum_address(payout)))
        return Stake(int(active), int(withdrawing), int(unlock))

    def stats(self, address: str) -> Stats:
        a = self.chain.w3.to_checksum_address(address)
        return Stats(a, *(int(x) for x in self.chain.call(self.contract.functions.statsOf(a))))

    def onchain_claimant(self, order_id: int, shard: int, miner: str, payout: str) -> bool:
        """Whether (`miner`, `payout`) holds the on-chain claim of the shard."""
        from eth_abi import encode
        from eth_utils import keccak

        w3 = self.chain.w3
        want = keccak(encode(["address", "address"], [w3.to_checksum_address(miner), w3.to_checksum_address(payout)]))
        return bytes(self.chain.call(self.contract.functions.onchainClaim(order_id, shard))) == want

    def posted_orders(self, from_block: int = 0, to_block: int | str = "latest") -> list[PostedOrder]:
        """Orders posted in the block range, from their events (oldest first)."""
        logs = self.chain.read(lambda: self.contract.events.OrderPosted().get_logs(from_block=from_block,
                                                                                    to_block=to_block))
        out = []
        for e in logs:
            a = e["args"]
            out.append(PostedOrder(int(a["orderId"]), a["buyer"], KIND_NAMES.get(a["kind"], str(a["kind"])),
                                   _hex(a["specHash"]), a["specURI"], int(a["shards"]), int(a["signedShards"]),
                                   int(a["rewardEach"]), int(a["stakeEach"]), int(a["deadline"]), int(a["reviewWindow"]),
                                   int(a["redeemWindow"]), int(e["blockNumber"])))
        return out

    def revealed_key(self, order_id: int, shard: int, miner: str, from_block: int = 0) -> bytes | None:
        """The content key of a shard made public on chain (answering a demand, or in its
        release), or None."""
        w3 = self.chain.w3
        m = w3.to_checksum_address(miner)
        for ev in (self.contract.events.KeyRevealed, self.contract.events.ResultReleased):
            logs = self.chain.read(lambda ev=ev: ev().get_logs(from_block=from_block, to_block="latest",
                                                              argument_filters={"orderId": order_id, "miner": m}))
            for e in logs:
                if int(e["args"]["shard"]) == shard:
                    return bytes(e["args"]["key"])
        return None

    def key_demands(self, from_block: int, to_block: int, miner: str) -> list[tuple[int, int]]:
        """(order id, shard) of every key demanded from `miner` in the block range."""
        m = self.chain.w3.to_checksum_address(miner)
        logs = self.chain.read(lambda: self.contract.events.KeyDemanded().get_logs(
            from_block=from_block, to_block=to_block, argument_filters={"miner": m}))
        return [(int(e["args"]["orderId"]), int(e["args"]["shard"])) for e in logs]

    def unbond_delay_s(self) -> int:
        return int(self.chain.call(self.contract.functions.UNBOND_DELAY()))

    def _tx(self, account, fn, gas_key: str, what: str) -> TxResult:
        return self.chain.transact(account, fn, gas=GAS[gas_key] if self.chain.embedded else None, what=what)


def stake_covers(stake: Stake, order: Order, *, now: int, unbond_delay_s: int, outstanding_claims: int = 0) -> bool:
    """Whether a buyer may grant one more claim of `order` to a miner with `stake`: the active
    stake covers this claim and the `outstanding_claims` already granted to it, and none of it
    can be withdrawn before the claim could be slashed (the latest time being the order's
    deadline plus its review window twice — a late submission — plus its redeem window)."""
    need = order.stake_each_wei * (outstanding_claims + 1)
    if stake.active_wei < need:
        return False
    slash_by = order.deadline + 2 * order.review_window_s + order.redeem_window_s
    return now + unbond_delay_s > slash_by


def content_key_hash(key: bytes) -> bytes:
    """The `resultKeyHash` committed for content key `key` (keccak256 of its 32 bytes)."""
    return key_hash(key)


def newest_vouchers(vouchers: list[Voucher]) -> list[Voucher]:
    return merge_vouchers(vouchers)


def _split(x: Signed | Claim) -> tuple[Claim, bytes]:
    if isinstance(x, Signed):
        if not isinstance(x.message, Claim):
            raise ValueError("expected a signed Claim")
        return x.message, x.signature
    if isinstance(x, Claim):
        return x, b""
    raise ValueError("expected a Claim or a signed Claim")


def _claim(c: Claim) -> tuple:
    return (c.order_id, c.shard, c.miner, c.payout)


def _result(r: ResultCommit | ResultAck) -> tuple:
    return (r.order_id, r.shard, r.miner, r.payout, r.result_hash, r.result_key_hash)


__all__ = ["OrderMarketClient", "OrderTerms", "Order", "PostedOrder", "Record", "RecordStatus", "Stake", "Stats",
           "Redemption", "stake_covers", "content_key_hash", "JOB_KINDS"]
