"""The buyer's order book: orders, their shards (one market job each) and what was learned
about every result, in SQLite, so a restart of `kminer order watch` (or the app) resumes.

One file per chain (`<data>/orders-<chain_id>.sqlite`): job ids only mean something on
their chain. Every change is one committed transaction (`synchronous=FULL`). Amounts are
integer NTK wei stored as decimal text; times are unix seconds (`deadline`, `submitted_at`
are chain block times, the `*_at` bookkeeping columns are wall-clock times).

Thread-safe: one connection guarded by a lock; status reads may come from any thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.sqlite import open_db

ORDER_STATES = ("waiting", "posting", "open", "merging", "done", "stalled", "failed")
"""waiting: a train order whose data is not verified yet; posting: the post transaction is
under way; open: posted, results coming in; merging: every shard verified, outputs being
assembled; done: the dataset or model is in the order folder; stalled: a shard was
rejected or refunded (repost it); failed: cannot finish (see reason)."""

SHARD_STATES = ("recorded", "posting", "open", "claimed", "submitted", "verifying", "accepted", "released",
                "rejected", "refunded")
"""recorded: not posted yet; open/claimed: as on the chain; submitted: a result is waiting
to be fetched and checked; verifying: the verify job runs; accepted: verified and paid;
released: the miner paid himself after the review window (still verified here for the
merge, see `verified`); rejected: failed verification (figures kept), reward back;
refunded: the deadline passed without a result, reward back."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    reward_each_wei TEXT NOT NULL,
    deadline_s INTEGER NOT NULL,
    review_window_s INTEGER NOT NULL,
    depends_on TEXT NOT NULL DEFAULT '[]',
    deadline INTEGER,
    output_dir TEXT,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS shards (
    order_id INTEGER NOT NULL REFERENCES orders(id),
    idx INTEGER NOT NULL,
    start INTEGER NOT NULL,
    count INTEGER NOT NULL,
    spec_sha TEXT NOT NULL,
    spec_uri TEXT NOT NULL,
    state TEXT NOT NULL,
    job_id INTEGER,
    miner TEXT,
    chain_status TEXT,
    result_sha TEXT,
    result_uri TEXT,
    verify_job TEXT,
    verified INTEGER,
    figures TEXT,
    reason TEXT,
    tx TEXT,
    history TEXT NOT NULL DEFAULT '[]',
    posted_at REAL,
    submitted_seen_at REAL,
    settled_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (order_id, idx)
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


@dataclass(frozen=True)
class ShardStatus:
    """One shard (one market job) of an order, as the buyer last saw it."""

    order_id: int
    index: int
    start: int
    """First frame of a render shard (0 for a train job)."""
    count: int
    """Frames in a render shard (0 for a train job)."""
    state: str
    """One of SHARD_STATES."""
    job_id: int | None
    miner: str | None
    chain_status: str | None
    """The market job's status on the chain (open, claimed, submitted, accepted...)."""
    result_sha: str | None
    result_uri: str | None
    verified: bool | None
    """True/False once the result was verified here; None before."""
    figures: dict[str, Any] | None
    """Verification figures: render {mode, rgb_mad_max, box_iou_min, exact_matches,
    frames_checked, failures}; train {metric, claimed, measured, gap, tolerance}."""
    reason: str | None
    tx: str | None
    """The last transaction this side sent for the shard (post, accept, reject, refund)."""
    history: list[dict[str, Any]]
    """Earlier market jobs of this shard (reposted after a rejection or refund)."""
    spec_sha: str
    spec_uri: str
    verify_job: str | None
    """Id of the verify job in the buyer's own job queue."""
    posted_at: float | None
    submitted_seen_at: float | None
    settled_at: float | None


@dataclass(frozen=True)
class OrderStatus:
    """An order and its shards."""

    id: int
    kind: str
    """render or train."""
    name: str
    state: str
    """One of ORDER_STATES."""
    params: dict[str, Any]
    reward_each_wei: int
    deadline_s: int
    """How long miners have for a shard, counted from when it is posted (seconds)."""
    review_window_s: int
    depends_on: list[int]
    deadline: int | None
    """Chain time the posted shards are due (None until posted)."""
    output_dir: str | None
    """The merged dataset or the model folder, once done."""
    reason: str | None
    created_at: float
    shards: list[ShardStatus] = field(default_factory=list)

    @property
    def total_wei(self) -> int:
        return self.reward_each_wei * len(self.shards)

    @property
    def settled(self) -> int:
        """Shards verified and paid (accepted, or released and verified)."""
        return sum(1 for s in self.shards if s.state == "accepted" or (s.state == "released" and s.verified))

    @property
    def progress(self) -> float:
        """Share of shards settled, 0..1."""
        return self.settled / len(self.shards) if self.shards else 0.0


class OrderBook:
    """See the module docstring."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._db = open_db(path, any_thread=True, rows=True)
        self._db.executescript(_SCHEMA)

    # ---- writes --------------------------------------------------------------------------
    def add_order(self, *, kind: str, name: str, state: str, params: dict, reward_each_wei: int, deadline_s: int,
                  review_window_s: int, depends_on: list[int], shards: list[dict]) -> int:
        """Insert an order and its shards (dicts with start, count, spec_sha, spec_uri) in one transaction."""
        now = time.time()
        with self._lock:
            c = self._db
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute("INSERT INTO orders (kind, name, state, params, reward_each_wei, deadline_s, "
                                "review_window_s, depends_on, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                (kind, name, state, json.dumps(params, sort_keys=True), str(reward_each_wei),
                                 int(deadline_s), int(review_window_s), json.dumps(depends_on), now, now))
                oid = int(cur.lastrowid)
                for i, s in enumerate(shards):
                    c.execute("INSERT INTO shards (order_id, idx, start, count, spec_sha, spec_uri, state, updated_at) "
                              "VALUES (?,?,?,?,?,?,'recorded',?)",
                              (oid, i, int(s.get("start", 0)), int(s.get("count", 0)), s["spec_sha"], s["spec_uri"], now))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return oid

    def set_order(self, order_id: int, **cols: Any) -> None:
        self._update("orders", "id=?", (order_id,), cols)

    def set_shard(self, order_id: int, idx: int, **cols: Any) -> None:
        self._update("shards", "order_id=? AND idx=?", (order_id, idx), cols)

    def _update(self, table: str, where: str, key: tuple, cols: dict[str, Any]) -> None:
        cols = {k: (json.dumps(v, sort_keys=True) if k in ("figures", "history", "params") and v is not None else v)
                for k, v in cols.items()}
        cols["updated_at"] = time.time()
        names = ", ".join(f"{k}=?" for k in cols)
        with self._lock:
            self._db.execute(f"UPDATE {table} SET {names} WHERE {where}", (*cols.values(), *key))

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        with self._lock:
            r = self._db.execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return r["v"] if r else None

    # ---- reads ---------------------------------------------------------------------------
    def order(self, order_id: int) -> OrderStatus | None:
        with self._lock:
            r = self._db.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
            if r is None:
                return None
            ss = self._db.execute("SELECT * FROM shards WHERE order_id=? ORDER BY idx", (order_id,)).fetchall()
        return _order(r, [_shard(s) for s in ss])

    def orders(self) -> list[OrderStatus]:
        with self._lock:
            rs = self._db.execute("SELECT * FROM orders ORDER BY id").fetchall()
            ss = self._db.execute("SELECT * FROM shards ORDER BY order_id, idx").fetchall()
        by: dict[int, list[ShardStatus]] = {}
        for s in ss:
            by.setdefault(s["order_id"], []).append(_shard(s))
        return [_order(r, by.get(r["id"], [])) for r in rs]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _order(r: sqlite3.Row, shards: list[ShardStatus]) -> OrderStatus:
    return OrderStatus(id=r["id"], kind=r["kind"], name=r["name"], state=r["state"], params=json.loads(r["params"]),
                       reward_each_wei=int(r["reward_each_wei"]), deadline_s=r["deadline_s"],
                       review_window_s=r["review_window_s"], depends_on=json.loads(r["depends_on"]),
                       deadline=r["deadline"], output_dir=r["output_dir"], reason=r["reason"],
                       created_at=r["created_at"], shards=shards)


def _shard(s: sqlite3.Row) -> ShardStatus:
    return ShardStatus(order_id=s["order_id"], index=s["idx"], start=s["start"], count=s["count"], state=s["state"],
                       job_id=s["job_id"], miner=s["miner"], chain_status=s["chain_status"], result_sha=s["result_sha"],
                       result_uri=s["result_uri"], verified=None if s["verified"] is None else bool(s["verified"]),
                       figures=json.loads(s["figures"]) if s["figures"] else None, reason=s["reason"], tx=s["tx"],
                       history=json.loads(s["history"]), spec_sha=s["spec_sha"], spec_uri=s["spec_uri"],
                       verify_job=s["verify_job"], posted_at=s["posted_at"], submitted_seen_at=s["submitted_seen_at"], settled_at=s["settled_at"])
