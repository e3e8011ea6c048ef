"""Job market and model market clients: typed results, amounts in token base units (wei).

`MarketClient` wraps the JobMarket and ModelMarket contracts of one `Deployment`. Every
method that moves tokens approves the market first when the allowance is short. Refusals
come back as `ContractRevert` with the contract's error name (e.g. `WrongStatus`,
`ReviewWindowOpen`). Times are unix seconds (block timestamps). Threading: as the `Chain`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from web3.logs import DISCARD

from wallet import artifacts
from wallet.chain import Chain, TxResult
from wallet.deploy import Deployment
from wallet.token import TokenClient

JOB_KINDS: dict[str, int] = {"render": 1, "train": 2, "infer": 3, "verify": 4}
KIND_NAMES: dict[int, str] = {v: k for k, v in JOB_KINDS.items()}
ZERO_ADDRESS = "0x" + "00" * 20
SHARDS_PER_TX = 100
"""Shards per postShards transaction (~16 M gas at 100: fits a 30 M gas block)."""


class JobStatus(enum.IntEnum):
    NONE = 0
    OPEN = 1
    CLAIMED = 2
    SUBMITTED = 3
    ACCEPTED = 4
    REJECTED = 5
    RELEASED = 6
    REFUNDED = 7


@dataclass(frozen=True)
class Job:
    id: int
    buyer: str
    miner: str | None
    kind: str
    status: JobStatus
    reward_wei: int
    stake_wei: int
    deadline: int
    review_window_s: int
    submitted_at: int | None
    spec_hash: str
    spec_uri: str
    result_hash: str | None
    result_uri: str | None


@dataclass(frozen=True)
class Reputation:
    address: str
    completed: int
    rejected: int
    expired: int


@dataclass(frozen=True)
class Listing:
    id: int
    owner: str
    active: bool
    price_wei: int
    card_hash: str
    uri: str


def _hash32(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        if len(value) != 32:
            raise ValueError("a hash must be 32 bytes")
        return value
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"a hash must be 32 bytes (64 hex digits), got {value!r}")
    return raw


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


class MarketClient:
    def __init__(self, chain: Chain, deployment: Deployment, *, token_address: str | None = None):
        self.chain = chain
        self.deployment = deployment
        w3 = chain.w3
        self.jobs_contract = w3.eth.contract(address=w3.to_checksum_address(deployment.job_market),
                                            abi=artifacts.load("JobMarket").abi_list())
        self.models_contract = w3.eth.contract(address=w3.to_checksum_address(deployment.model_market),
                                              abi=artifacts.load("ModelMarket").abi_list())
        self.token = TokenClient(chain, token_address or deployment.ntk)

    # --- buyer side ---------------------------------------------------------------------

    def post(self, account, *, kind: str, spec_hash: str | bytes, spec_uri: str, reward_wei: int, deadline: int,
             review_window_s: int, stake_wei: int = 0) -> tuple[int, TxResult]:
        """Post one job with `reward_wei` escrowed; returns (job id, tx)."""
        self.token.ensure_allowance(account, self.jobs_contract.address, reward_wei)
        fn = self.jobs_contract.functions.post(_kind(kind), _hash32(spec_hash), spec_uri, reward_wei, deadline,
                                               review_window_s, stake_wei)
        res = self._tx(account, fn, 400_000, "posting the job")
        ev = self.jobs_contract.events.JobPosted().process_receipt(res.receipt, errors=DISCARD)
        return int(ev[0]["args"]["id"]), res

    def post_shards(self, account, *, kind: str, spec_hashes: list[str | bytes], spec_uris: list[str],
                    reward_each_wei: int, deadline: int, review_window_s: int, stake_wei: int = 0,
                    max_per_tx: int = SHARDS_PER_TX) -> tuple[list[int], list[TxResult]]:
        """Post N shard jobs, `max_per_tx` per transaction (N * reward escrowed); returns (ids, txs).

        Up to `max_per_tx` shards go in one transaction; more are split so each fits a block.
        """
        if len(spec_hashes) != len(spec_uris) and len(spec_hashes) > max_per_tx:
            raise ValueError("spec_hashes and spec_uris differ in length")  # one batch: the contract says so
        self.token.ensure_allowance(account, self.jobs_contract.address, reward_each_wei * len(spec_hashes))
        ids: list[int] = []
        txs: list[TxResult] = []
        if len(spec_hashes) != len(spec_uris):  # one batch: the contract refuses it (LengthMismatch)
            batches = [(list(spec_hashes), list(spec_uris))]
        else:
            batches = _shard_batches(list(spec_hashes), list(spec_uris), max_per_tx)
        for hs, uris in batches:
            hashes = [_hash32(h) for h in hs]
            fn = self.jobs_contract.functions.postShards(_kind(kind), hashes, uris, reward_each_wei, deadline,
                                                         review_window_s, stake_wei)
            gas = POST_BASE_GAS + sum(_shard_gas(u) for u in uris)
            res = self._tx(account, fn, gas, "posting the shards")
            ids += [int(e["args"]["id"]) for e in self.jobs_contract.events.JobPosted().process_receipt(res.receipt, errors=DISCARD)]
            txs.append(res)
        return ids, txs

    def accept(self, account, job_id: int) -> TxResult:
        return self._tx(account, self.jobs_contract.functions.accept(job_id), 150_000, f"accepting job {job_id}")

    def reject(self, account, job_id: int) -> TxResult:
        return self._tx(account, self.jobs_contract.functions.reject(job_id), 150_000, f"rejecting job {job_id}")

    def refund(self, account, job_id: int) -> TxResult:
        return self._tx(account, self.jobs_contract.functions.refund(job_id), 150_000, f"refunding job {job_id}")

    # --- miner side ---------------------------------------------------------------------

    def claim(self, account, job_id: int) -> TxResult:
        job = self.job(job_id)
        self.token.ensure_allowance(account, self.jobs_contract.address, job.stake_wei)
        return self._tx(account, self.jobs_contract.functions.claim(job_id), 150_000, f"claiming job {job_id}")

    def submit(self, account, job_id: int, result_hash: str | bytes, result_uri: str) -> TxResult:
        fn = self.jobs_contract.functions.submitResult(job_id, _hash32(result_hash), result_uri)
        return self._tx(account, fn, 250_000, f"submitting the result of job {job_id}")

    def release(self, account, job_id: int) -> TxResult:
        return self._tx(account, self.jobs_contract.functions.release(job_id), 150_000, f"releasing job {job_id}")

    # --- reads --------------------------------------------------------------------------

    def job_count(self) -> int:
        return int(self.chain.call(self.jobs_contract.functions.jobCount()))

    def job(self, job_id: int) -> Job:
        j = self.chain.call(self.jobs_contract.functions.getJob(job_id), what=f"reading job {job_id}")
        (buyer, deadline, window, status, miner, submitted_at, kind, reward, stake, spec_hash, result_hash,
         spec_uri, result_uri) = j
        has_result = status >= JobStatus.SUBMITTED and status != JobStatus.REFUNDED
        return Job(id=job_id, buyer=buyer, miner=None if int(miner, 16) == 0 else miner,
                   kind=KIND_NAMES.get(kind, str(kind)), status=JobStatus(status), reward_wei=int(reward),
                   stake_wei=int(stake), deadline=int(deadline), review_window_s=int(window),
                   submitted_at=int(submitted_at) or None, spec_hash=_hex(spec_hash), spec_uri=spec_uri,
                   result_hash=_hex(result_hash) if has_result else None, result_uri=result_uri if has_result else None)

    def jobs(self, *, status: JobStatus | None = None, first: int = 1, limit: int = 200) -> list[Job]:
        """Jobs by id from `first` (at most `limit`), optionally only those in `status`."""
        out = []
        for i in range(first, min(self.job_count(), first + limit - 1) + 1):
            j = self.job(i)
            if status is None or j.status == status:
                out.append(j)
        return out

    def reputation(self, address: str) -> Reputation:
        f = self.jobs_contract.functions
        a = self.chain.w3.to_checksum_address(address)
        return Reputation(a, int(self.chain.call(f.completed(a))), int(self.chain.call(f.rejected(a))),
                          int(self.chain.call(f.expired(a))))

    # --- model market -------------------------------------------------------------------

    def list_model(self, account, *, card_hash: str | bytes, uri: str, price_wei: int) -> tuple[int, TxResult]:
        fn = self.models_contract.functions.list(_hash32(card_hash), uri, price_wei)
        # the URI is stored on chain: a peer-to-peer reference (~250 bytes) takes ~9 more slots
        res = self._tx(account, fn, 150_000 + 25_000 * ((len(uri.encode()) + 31) // 32), "listing the model")
        return int(self.models_contract.events.ModelListed().process_receipt(res.receipt, errors=DISCARD)[0]["args"]["id"]), res

    def buy_model(self, account, listing_id: int) -> TxResult:
        listing = self.listing(listing_id)
        self.token.ensure_allowance(account, self.models_contract.address, listing.price_wei)
        fn = self.models_contract.functions.buy(listing_id, listing.price_wei)
        return self._tx(account, fn, 150_000, f"buying model {listing_id}")

    def purchases(self, from_block: int, to_block: int) -> list[tuple[int, str]]:
        """(listing id, buyer) of every model bought in the block range, oldest first."""
        logs = self.chain.read(lambda: self.models_contract.events.ModelPurchased().get_logs(
            from_block=from_block, to_block=to_block))
        return [(int(e["args"]["id"]), e["args"]["buyer"]) for e in logs]

    def has_purchased(self, listing_id: int, buyer: str) -> bool:
        return bool(self.chain.call(self.models_contract.functions.hasPurchased(
            listing_id, self.chain.w3.to_checksum_address(buyer))))

    def listing(self, listing_id: int) -> Listing:
        owner, active, price, card_hash, uri = self.chain.call(self.models_contract.functions.getListing(listing_id),
                                                               what=f"reading model listing {listing_id}")
        return Listing(listing_id, owner, bool(active), int(price), _hex(card_hash), uri)

    def _tx(self, account, fn, embedded_gas: int, what: str) -> TxResult:
        return self.chain.transact(account, fn, gas=embedded_gas if self.chain.embedded else None, what=what)


POST_BASE_GAS = 200_000
BATCH_GAS_BUDGET = 20_000_000
"""Gas one postShards transaction may plan for (the embedded chain's blocks hold 30 M)."""


def _shard_gas(uri: str) -> int:
    """Gas one shard costs in postShards: the job's storage slots, its event, and its URI
    (stored as a string: a new 32-byte slot costs 22.1 k, calldata and log bytes a little more)."""
    return 180_000 + 1_000 * len(uri.encode("utf-8"))


def _shard_batches(hashes: list, uris: list[str], max_per_tx: int) -> list[tuple[list, list[str]]]:
    """Consecutive batches of at most `max_per_tx` shards whose gas fits BATCH_GAS_BUDGET."""
    out: list[tuple[list, list[str]]] = []
    cur_h: list = []
    cur_u: list[str] = []
    gas = POST_BASE_GAS
    for h, u in zip(hashes, uris):
        g = _shard_gas(u)
        if cur_h and (len(cur_h) >= max_per_tx or gas + g > BATCH_GAS_BUDGET):
            out.append((cur_h, cur_u))
            cur_h, cur_u, gas = [], [], POST_BASE_GAS
        cur_h.append(h)
        cur_u.append(u)
        gas += g
    if cur_h or not out:
        out.append((cur_h, cur_u))
    return out


def _kind(kind: str) -> int:
    try:
        return JOB_KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown job kind {kind!r}; one of {', '.join(JOB_KINDS)}") from None
