"""Event indexer: NTK Transfer and market events of one chain into SQLite, for history.

`Indexer.sync()` walks from the block after the last one it stored to the chain head, one
block range (`step` blocks) per `eth_getLogs` call and one SQLite transaction per range, so an
interrupted sync resumes where it stopped. Before each step it checks that the last stored
block still has the hash it had; if not (a re-org), it finds the newest stored block the chain
still agrees with and rolls every event above it back, then re-reads from there.

Amounts are wei, stored as decimal TEXT (they can exceed SQLite's 64-bit integers). Times are
block timestamps (unix seconds). Threading: one thread at a time per `Indexer` (its own SQLite
connection); several processes may read the same file (WAL).
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from common.sqlite import open_db
from wallet import artifacts
from wallet.chain import Chain

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks(number INTEGER PRIMARY KEY, hash TEXT NOT NULL, timestamp INTEGER);
CREATE TABLE IF NOT EXISTS events(
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash TEXT NOT NULL, contract TEXT NOT NULL,
    name TEXT NOT NULL, job_id INTEGER, from_addr TEXT, to_addr TEXT, amount TEXT, timestamp INTEGER,
    args TEXT NOT NULL, PRIMARY KEY(block, log_index)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_from ON events(from_addr, block);
CREATE INDEX IF NOT EXISTS events_to ON events(to_addr, block);
CREATE INDEX IF NOT EXISTS events_job ON events(job_id, block);
"""
_EVENT_CONTRACTS = ("NTK", "JobMarket", "ModelMarket", "OrderMarket")
# which argument is the "from" / "to" party and the amount, per event
_PARTIES = {
    "Transfer": ("from", "to", "value"),
    "JobPosted": ("buyer", None, "reward"),
    "JobClaimed": ("miner", None, "stake"),
    "ResultSubmitted": ("miner", None, None),
    "JobAccepted": (None, "miner", "reward"),
    "JobRejected": (None, "miner", None),
    "PaymentReleased": (None, "miner", "reward"),
    "JobRefunded": (None, "buyer", "amount"),
    "OrderPosted": ("buyer", None, None),
    "ShardClaimed": ("miner", None, None),
    "ResultSubmitted": ("miner", "payout", None),
    "ResultRejected": (None, "miner", None),
    "ResultReleased": (None, "payout", "amount"),
    "VoucherRedeemed": (None, "payee", "amount"),
    "OrderClosed": (None, "buyer", "refunded"),
    "Slashed": ("payout", None, "amount"),
    "StakeDeposited": ("payout", None, "amount"),
    "StakeWithdrawn": (None, "payout", "amount"),
    "ModelListed": ("owner", None, "price"),
    "ModelPurchased": ("buyer", "owner", "price"),
}


class _EventCodec:
    """Decodes one event's logs straight with eth_abi (web3's generic decoder is ~5x slower)."""

    def __init__(self, abi: dict):
        self.name = abi["name"]
        self.indexed = [(i["name"], i["type"]) for i in abi["inputs"] if i["indexed"]]
        self.data_names = [i["name"] for i in abi["inputs"] if not i["indexed"]]
        self.data_types = [i["type"] for i in abi["inputs"] if not i["indexed"]]

    def decode(self, topics: list[bytes], data: bytes) -> dict:
        from eth_abi import decode

        if len(topics) != len(self.indexed) + 1:
            raise ValueError("topic count does not match the event")
        args = {}
        for (name, typ), topic in zip(self.indexed, topics[1:]):
            if typ == "address":
                args[name] = _checksum(topic[12:])
            elif typ.startswith("uint"):
                args[name] = int.from_bytes(topic, "big")
            elif typ == "bytes32":
                args[name] = topic
            else:
                args[name] = decode([typ], topic)[0]
        for name, typ, value in zip(self.data_names, self.data_types, decode(self.data_types, data)):
            args[name] = _checksum(bytes.fromhex(value[2:])) if typ == "address" else value
        return args


@functools.lru_cache(maxsize=65536)
def _checksum(raw20: bytes) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(raw20)


def _int(x) -> int:
    return int(x, 16) if isinstance(x, str) else int(x)


def _bytes(x) -> bytes:
    return bytes.fromhex(x[2:]) if isinstance(x, str) else bytes(x)


@dataclass(frozen=True)
class Event:
    block: int
    log_index: int
    tx_hash: str
    contract: str
    name: str
    job_id: int | None
    from_addr: str | None
    to_addr: str | None
    amount_wei: int | None
    timestamp: int | None
    args: dict


@dataclass(frozen=True)
class SyncResult:
    from_block: int
    to_block: int
    events_added: int
    rolled_back_to: int | None


@dataclass(frozen=True)
class BalancePoint:
    block: int
    timestamp: int | None
    balance_wei: int


class Indexer:
    """Indexes the events of `contracts` (address -> artifact name) on `chain` into `db_path`."""

    def __init__(self, chain: Chain, db_path: Path, contracts: dict[str, str], *, start_block: int = 0,
                 step: int = 2_000):
        from eth_utils import event_abi_to_log_topic

        self.chain = chain
        self.step = step
        self.contracts = {chain.w3.to_checksum_address(a): n for a, n in contracts.items()}
        self._topics = {}
        for name in set(self.contracts.values()):
            for item in artifacts.load(name).abi:
                if item.get("type") == "event":
                    self._topics[bytes(event_abi_to_log_topic(item))] = _EventCodec(item)
        self.db = open_db(db_path, autocommit=False)
        self.db.executescript(SCHEMA)
        with self.db:
            stored = self._meta("chain_id")
            if stored is None:
                self._set_meta("chain_id", str(chain.chain_id))
                self._set_meta("last_block", str(start_block - 1))
                self._set_meta("start_block", str(start_block))
            elif int(stored) != chain.chain_id:
                raise ValueError(f"index {db_path} belongs to chain {stored}, not {chain.chain_id}")

    # --- syncing ------------------------------------------------------------------------

    @property
    def last_block(self) -> int:
        return int(self._meta("last_block"))

    def sync(self, to_block: int | None = None, *, max_ranges: int | None = None) -> SyncResult:
        """Index up to `to_block` (default: the head), at most `max_ranges` ranges this call."""
        rolled = self._check_reorg()
        head = self.chain.block_number() if to_block is None else to_block
        start = self.last_block + 1
        added = 0
        ranges = 0
        while self.last_block < head and (max_ranges is None or ranges < max_ranges):
            lo = self.last_block + 1
            hi = min(head, lo + self.step - 1)
            added += self._index_range(lo, hi)
            ranges += 1
        return SyncResult(start, self.last_block, added, rolled)

    def _index_range(self, lo: int, hi: int) -> int:
        w3 = self.chain.w3
        logs = self.chain.read(lambda: self._get_logs(lo, hi))
        end_block = self.chain.read(lambda: w3.eth.get_block(hi))
        rows = []
        stamps: dict[int, int] = {hi: int(end_block["timestamp"])}
        hashes: dict[int, str] = {hi: bytes(end_block["hash"]).hex()}
        for lg in logs:
            decoded = self._decode(lg)
            if decoded is None:
                continue
            bn = _int(lg["blockNumber"])
            if bn not in stamps:
                ts = lg.get("blockTimestamp")
                if ts is None:
                    blk = self.chain.read(lambda: w3.eth.get_block(bn))
                    ts, hashes[bn] = blk["timestamp"], bytes(blk["hash"]).hex()
                stamps[bn] = _int(ts)
            hashes.setdefault(bn, _bytes(lg["blockHash"]).hex())
            rows.append(self._row(*decoded, lg, stamps[bn]))
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO blocks VALUES (?,?,?)",
                                [(n, h, stamps.get(n)) for n, h in hashes.items()])
            self._set_meta("last_block", str(hi))
        return len(rows)

    def _get_logs(self, lo: int, hi: int) -> list:
        """Logs of our contracts in [lo, hi]; over JSON-RPC raw (web3's result formatting is slow)."""
        if self.chain.embedded:
            return self.chain.w3.eth.get_logs({"fromBlock": lo, "toBlock": hi, "address": list(self.contracts)})
        resp = self.chain.w3.provider.make_request("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi),
                                                                   "address": list(self.contracts)}])
        if "error" in resp:
            raise RuntimeError(f"eth_getLogs failed: {resp['error']}")
        return resp["result"]

    def _decode(self, lg):
        topics = [_bytes(t) for t in lg["topics"]]
        if not topics:
            return None
        codec = self._topics.get(topics[0])
        if codec is None:
            return None
        try:
            return codec.name, codec.decode(topics, _bytes(lg["data"]))
        except Exception as e:  # a foreign event with a clashing topic: skip, never stop the sync
            log.warning("undecodable log in block %s: %s", lg["blockNumber"], type(e).__name__)
            return None

    def _row(self, name: str, args: dict, lg, ts: int) -> tuple:
        frm, to, amt = _PARTIES.get(name, (None, None, None))
        contract = _checksum(_bytes(lg["address"]))
        job_id = int(args["id"]) if "id" in args and self.contracts.get(contract) == "JobMarket" else None
        plain = {k: ("0x" + v.hex() if isinstance(v, (bytes, bytearray)) else (str(v) if isinstance(v, int) else v))
                 for k, v in args.items()}
        return (_int(lg["blockNumber"]), _int(lg["logIndex"]), "0x" + _bytes(lg["transactionHash"]).hex(),
                contract, name, job_id, args.get(frm) if frm else None, args.get(to) if to else None,
                str(int(args[amt])) if amt else None, ts, json.dumps(plain))

    def _check_reorg(self) -> int | None:
        """Roll back to the newest stored block whose hash the chain still has; None if no re-org."""
        rows = self.db.execute("SELECT number, hash FROM blocks WHERE number <= ? ORDER BY number DESC",
                               (self.last_block,)).fetchall()
        if not rows:
            return None
        w3 = self.chain.w3
        for i, (number, h) in enumerate(rows):
            try:
                current = bytes(self.chain.read(lambda: w3.eth.get_block(number))["hash"]).hex()
            except Exception:
                current = None  # the chain is shorter now
            if current == h:
                if i == 0:
                    return None
                self._rollback_to(number)
                return number
        start = int(self._meta("start_block"))  # nothing we stored survives: start over
        self._rollback_to(start - 1)
        return start - 1

    def _rollback_to(self, number: int) -> None:
        log.warning("chain re-org: rolling the index back to block %d", number)
        with self.db:
            self.db.execute("DELETE FROM events WHERE block > ?", (number,))
            self.db.execute("DELETE FROM blocks WHERE number > ?", (number,))
            self._set_meta("last_block", str(number))

    # --- queries ------------------------------------------------------------------------

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]

    def history(self, address: str | None = None, *, names: Iterable[str] | None = None, limit: int = 100,
                before_block: int | None = None) -> list[Event]:
        """Newest first: events where `address` is a party (all events when None)."""
        sql, params = "SELECT * FROM events WHERE 1=1", []
        if address is not None:
            a = self.chain.w3.to_checksum_address(address)
            sql += " AND (from_addr = ? OR to_addr = ?)"
            params += [a, a]
        if names:
            names = list(names)
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        if before_block is not None:
            sql += " AND block < ?"
            params.append(before_block)
        sql += " ORDER BY block DESC, log_index DESC LIMIT ?"
        params.append(limit)
        return [_event(r) for r in self.db.execute(sql, params)]

    def events_after(self, block: int, log_index: int, *, names: Iterable[str] | None = None,
                     limit: int = 1000) -> list[Event]:
        """Oldest first: stored events after position (block, log_index), at most `limit`; a
        consumer keeps the last one's position as its cursor."""
        sql, params = "SELECT * FROM events WHERE (block > ? OR (block = ? AND log_index > ?))", [block, block, log_index]
        if names:
            names = list(names)
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        sql += " ORDER BY block, log_index LIMIT ?"
        params.append(limit)
        return [_event(r) for r in self.db.execute(sql, params)]

    def job_events(self, job_id: int) -> list[Event]:
        return [_event(r) for r in self.db.execute("SELECT * FROM events WHERE job_id = ? ORDER BY block, log_index", (job_id,))]

    def order_events(self, order_id: int) -> list[Event]:
        """The OrderMarket events of order `order_id`, oldest first."""
        rows = self.db.execute("SELECT * FROM events WHERE json_extract(args, '$.orderId') = ? "
                               "ORDER BY block, log_index", (str(order_id),))
        return [_event(r) for r in rows]

    def balance_history(self, address: str, token: str) -> list[BalancePoint]:
        """The token balance of `address` after every block in which it changed, oldest first."""
        a = self.chain.w3.to_checksum_address(address)
        t = self.chain.w3.to_checksum_address(token)
        rows = self.db.execute(
            "SELECT block, timestamp, from_addr, to_addr, amount FROM events WHERE name='Transfer' AND contract=? "
            "AND (from_addr=? OR to_addr=?) ORDER BY block, log_index", (t, a, a)).fetchall()
        out: list[BalancePoint] = []
        bal = 0
        for block, ts, frm, to, amount in rows:
            v = int(amount)
            if to == a:
                bal += v
            if frm == a:
                bal -= v
            if out and out[-1].block == block:
                out[-1] = BalancePoint(block, ts, bal)
            else:
                out.append(BalancePoint(block, ts, bal))
        return out

    def close(self) -> None:
        self.db.close()

    def _meta(self, k: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k=?", (k,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, k: str, v: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?,?)", (k, v))


def _event(r) -> Event:
    block, log_index, tx_hash, contract, name, job_id, frm, to, amount, ts, args = r
    return Event(block, log_index, tx_hash, contract, name, job_id, frm, to, int(amount) if amount is not None else None,
                 ts, json.loads(args))


def for_deployment(chain: Chain, db_path: Path, deployment, **kw) -> Indexer:
    """An indexer of the token, JobMarket, ModelMarket and OrderMarket (when deployed) of
    `deployment`, from its deploy block (OrderMarket events: `order_events`)."""
    kw.setdefault("start_block", deployment.block)
    contracts = {deployment.ntk: "NTK", deployment.job_market: "JobMarket", deployment.model_market: "ModelMarket"}
    if getattr(deployment, "order_market", None):
        contracts[deployment.order_market] = "OrderMarket"
    return Indexer(chain, db_path, contracts, **kw)
