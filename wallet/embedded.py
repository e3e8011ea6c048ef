"""The embedded chain: a real EVM (py-evm) persisted in one SQLite file.

The default `local` network runs inside the app, so a new user has a working wallet and
market without any node. Its state lives in `<chain_dir>/chain.sqlite`: one key/value table
that py-evm's trie and chain database write to; every write since the last block sits in one
open SQLite transaction that is committed (with `synchronous=FULL`) right after the block is
mined, so a kill -9 at any moment leaves the last mined block and nothing half of the next.

Threading: py-evm is not thread-safe. One thread owns an `EmbeddedChain` (the SQLite
connection refuses use from another thread); a file lock (`chain.lock`) stops a second
process opening the same chain. Blocks are mined one per transaction (auto-mine); there is no
snapshot, revert or time travel on this chain; `mine_empty()` adds an empty block stamped
now, for callers waiting on chain time.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from eth.chains.base import MiningChain
from eth.db.backends.base import BaseAtomicDB
from eth.db.atomic import AtomicDBWriteBatch
from eth.exceptions import CanonicalHeadNotFound, TransactionNotFound
from eth.vm.forks import PragueVM
from eth_tester import EthereumTester, PyEVMBackend
from eth.exceptions import Revert
from eth.vm.spoof import SpoofTransaction
from eth_tester.backends.pyevm.main import _get_vm_for_block_number, get_default_genesis_params
from eth_tester.backends.pyevm.serializers import serialize_transaction, serialize_transaction_receipt
from eth_tester.exceptions import TransactionNotFound as TesterTransactionNotFound
from eth_utils import encode_hex, to_canonical_address
from filelock import FileLock, Timeout

from common.sqlite import open_db
from wallet.errors import ChainLocked, RawRevert
from wallet.networks import LOCAL_CHAIN_ID

log = logging.getLogger(__name__)

GENESIS_ETH_WEI = 1_000_000 * 10**18
"""ETH (for gas) the user's address holds at genesis on a new local chain."""
GAS_LIMIT = 30_000_000


class SQLiteAtomicDB(BaseAtomicDB):
    """py-evm's key/value store in SQLite: table kv(k, v), WAL, one transaction per block.

    Writes open a transaction lazily; `commit()` makes everything since the last commit
    durable at once, `rollback()` forgets it. Reads see uncommitted writes (same connection).
    """

    def __init__(self, path: Path):
        self._conn = open_db(path)  # autocommit: we issue BEGIN ourselves
        self._conn.execute("CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._in_tx = False

    def _begin(self) -> None:
        if not self._in_tx:
            self._conn.execute("BEGIN IMMEDIATE")
            self._in_tx = True

    def __getitem__(self, key: bytes) -> bytes:
        row = self._conn.execute("SELECT v FROM kv WHERE k=?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._begin()
        self._conn.execute("INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        self._begin()
        if self._conn.execute("DELETE FROM kv WHERE k=?", (key,)).rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self._conn.execute("SELECT 1 FROM kv WHERE k=?", (key,)).fetchone() is not None

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicDBWriteBatch]:
        with AtomicDBWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def commit(self) -> None:
        if self._in_tx:
            self._conn.execute("COMMIT")
            self._in_tx = False

    def rollback(self) -> None:
        if self._in_tx:
            self._conn.execute("ROLLBACK")
            self._in_tx = False

    def close(self) -> None:
        self.rollback()
        self._conn.close()


class LocalChain(MiningChain):
    """Our chain: PragueVM from genesis, our chain id, constant gas limit, fresh timestamps."""

    chain_id = LOCAL_CHAIN_ID
    vm_configuration = ((0, PragueVM),)

    def create_header_from_parent(self, parent_header, **header_params):
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self):
        return self.get_vm().get_transaction_builder()


class PersistentBackend(PyEVMBackend):
    """eth-tester's py-evm backend over a `LocalChain` in SQLite.

    Each mined block is committed to SQLite; a failed transaction rolls back to the last block.
    Transactions and receipts are found through py-evm's hash index, not by scanning blocks.
    """

    def __init__(self, db: SQLiteAtomicDB, chain: LocalChain):
        # deliberately not calling PyEVMBackend.__init__: it builds an in-memory chain
        self.db = db
        self.chain = chain
        self.account_keys = ()  # no fixed tester keys: every transaction is signed by the app

    def reset_to_genesis(self, *args, **kwargs):  # pragma: no cover - never on a persistent chain
        raise RuntimeError("the persistent chain cannot be reset")

    def take_snapshot(self):
        raise RuntimeError("no snapshots on the persistent chain")

    def revert_to_snapshot(self, snapshot):
        raise RuntimeError("no snapshots on the persistent chain")

    def time_travel(self, to_timestamp):
        raise RuntimeError("no time travel on the persistent chain")

    def send_raw_transaction(self, raw_transaction):
        self._refresh_pending_timestamp()
        try:
            return super().send_raw_transaction(raw_transaction)
        except BaseException:
            self._rollback()
            raise

    def mine_blocks(self, num_blocks=1, coinbase=b"\x00" * 20):
        try:
            hashes = super().mine_blocks(num_blocks, coinbase)
        except BaseException:
            self._rollback()
            raise
        self.db.commit()
        return hashes

    def mine_empty(self) -> int:
        """Mine one block without transactions, stamped now; returns its number. Blocks are
        otherwise made only for transactions, so chain time stands still while nothing
        happens; a caller waiting on chain time (a review window) moves it on with this.
        Committed like every block (kill -9 safe)."""
        self._refresh_pending_timestamp()
        self.mine_blocks(1)
        return self.chain.chaindb.get_canonical_head().block_number

    def call(self, transaction, block_number="latest"):
        """eth_call as a read: the sender need not hold ETH for the gas it would pay."""
        tx = dict(transaction)
        tx.setdefault("gas", self._max_available_gas())
        unsigned = self._get_normalized_and_unsigned_evm_transaction(tx, block_number)
        evm_tx = SpoofTransaction(unsigned, from_=transaction["from"])
        state = _get_vm_for_block_number(self.chain, block_number).state
        snapshot = state.snapshot()
        try:
            need = unsigned.gas * unsigned.max_fee_per_gas + unsigned.value
            if state.get_balance(transaction["from"]) < need:
                state.set_balance(transaction["from"], need)
            computation = state.apply_transaction(evm_tx)
        finally:
            state.revert(snapshot)
        if computation.is_error:
            err = computation._error
            if isinstance(err, Revert) and err.args and isinstance(err.args[0], bytes):
                raise RawRevert(err.args[0])  # web3 would stringify the bytes; wallet.chain decodes them
            raise RawRevert(b"", f"{type(err).__name__}: {err}")
        return computation.output

    def _rollback(self) -> None:
        self.db.rollback()
        head = self.chain.chaindb.get_canonical_head()
        self.chain.header = self.chain.create_header_from_parent(head)

    def _refresh_pending_timestamp(self) -> None:
        """Stamp the pending block with the current time (it was made when the last block was)."""
        header = self.chain.header
        if header.gas_used == 0:
            parent = self.chain.chaindb.get_canonical_head()
            ts = max(int(time.time()), parent.timestamp + 1)
            if ts != header.timestamp:
                self.chain.header = header.copy(timestamp=ts)

    def _find(self, transaction_hash: bytes):
        pending = self.chain.get_block()
        for index, tx in enumerate(pending.transactions):
            if tx.hash == transaction_hash:
                return pending, tx, index
        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
        except TransactionNotFound:
            raise TesterTransactionNotFound(f"No transaction found for transaction hash: {encode_hex(transaction_hash)}")
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index

    def get_transaction_by_hash(self, transaction_hash):
        block, tx, index = self._find(transaction_hash)
        return serialize_transaction(block, tx, index, block.number == self.chain.get_block().number)

    def get_transaction_receipt(self, transaction_hash):
        block, tx, index = self._find(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction_receipt(block, block.get_receipts(self.chain.chaindb), tx, index, is_pending,
                                             self.chain.get_vm())


def empty_block_miner(w3):
    """`mine_empty` of the embedded chain behind a Web3 (from `EmbeddedChain.web3()`), or None
    for any other chain (nodes make their own blocks)."""
    backend = getattr(getattr(getattr(w3, "provider", None), "ethereum_tester", None), "backend", None)
    return backend.mine_empty if isinstance(backend, PersistentBackend) else None


class EmbeddedChain:
    """Opens (or creates) the persistent local chain in `chain_dir` and holds it locked.

    `genesis_account` is funded with `GENESIS_ETH_WEI` only when the chain is created; it is
    ignored when the chain already exists. Use as a context manager, or call `close()`.
    """

    def __init__(self, chain_dir: Path, genesis_account: str | None = None, *, lock_timeout_s: float = 0.0):
        self.chain_dir = Path(chain_dir)
        self.chain_dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.chain_dir / "chain.lock"))
        try:
            self._lock.acquire(timeout=lock_timeout_s)
        except Timeout:
            raise ChainLocked(f"the local chain in {self.chain_dir} is open in another Knowledge Miner process; "
                              "close it first") from None
        try:
            self.db = SQLiteAtomicDB(self.chain_dir / "chain.sqlite")
            self.created = False
            try:
                self.db.commit()
                LocalChain(self.db).chaindb.get_canonical_head()
                chain = LocalChain(self.db)
            except CanonicalHeadNotFound:
                chain = self._create(genesis_account)
                self.created = True
            self.backend = PersistentBackend(self.db, chain)
            self.tester = EthereumTester(backend=self.backend, auto_mine_transactions=True)
        except BaseException:
            self._lock.release()
            raise

    def _create(self, genesis_account: str | None) -> LocalChain:
        if genesis_account is None:
            raise ValueError("a new local chain needs the address to fund at genesis")
        params = get_default_genesis_params({"gas_limit": GAS_LIMIT, "timestamp": int(time.time())})
        alloc = {to_canonical_address(genesis_account): {"balance": GENESIS_ETH_WEI, "nonce": 0, "code": b"", "storage": {}}}
        chain = LocalChain.from_genesis(self.db, params, alloc)
        self.db.commit()
        log.info("created local chain %d in %s", LOCAL_CHAIN_ID, self.chain_dir)
        return chain

    def mine_empty(self) -> int:
        """See `PersistentBackend.mine_empty` (same thread as the chain's other calls)."""
        return self.backend.mine_empty()

    @property
    def block_number(self) -> int:
        return self.backend.chain.chaindb.get_canonical_head().block_number

    def web3(self):
        """A `Web3` over this chain (same thread only)."""
        import copy

        from web3 import Web3
        from web3.providers.eth_tester import EthereumTesterProvider
        from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

        endpoints = copy.copy(API_ENDPOINTS)
        endpoints["eth"] = dict(API_ENDPOINTS["eth"], chainId=static_return(LOCAL_CHAIN_ID))
        w3 = Web3(EthereumTesterProvider(self.tester, api_endpoints=endpoints))
        w3.eth.default_account = "0x" + "00" * 19 + "01"  # calls need a sender; no key exists here
        return w3

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None
        if self._lock.is_locked:
            self._lock.release()

    def __enter__(self) -> "EmbeddedChain":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
