"""The miner's own SQLite file (data_dir/miner.sqlite): market jobs it works on, open jobs the
indexer announced, its event cursor, pricing decisions and floor changes.

Every write is one committed transaction (WAL, synchronous=FULL), so a kill -9 leaves each
row as it was before or after a change, never half. Money is integer wei stored as decimal
TEXT; times are unix seconds (REAL wall clock, INTEGER chain timestamps).

Threading: any thread (one connection guarded by a lock; `check_same_thread=False`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.sqlite import open_db

log = logging.getLogger(__name__)

STATES = ("claiming", "claimed", "running", "uploaded", "submitted", "paid", "rejected", "failed")
FINAL = frozenset({"paid", "rejected", "failed"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS market_jobs (
    job_id INTEGER PRIMARY KEY, state TEXT NOT NULL, kind TEXT NOT NULL, reward_wei TEXT NOT NULL,
    spec_sha TEXT NOT NULL, spec_uri TEXT NOT NULL, device_key TEXT, output_sha TEXT, result_uri TEXT,
    tx_claim TEXT, tx_submit TEXT, tx_paid TEXT, reason TEXT, claimed_at REAL, first_progress_at REAL,
    uploaded_at REAL, paid_at REAL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS open_jobs (
    job_id INTEGER PRIMARY KEY, buyer TEXT, kind TEXT NOT NULL, reward_wei TEXT NOT NULL, deadline INTEGER NOT NULL,
    spec_sha TEXT NOT NULL, spec_uri TEXT NOT NULL, skip_reason TEXT, tries INTEGER NOT NULL DEFAULT 0,
    retry_at REAL NOT NULL DEFAULT 0, last_decision TEXT
);
CREATE TABLE IF NOT EXISTS pricing_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, job_id INTEGER, device_key TEXT, kind TEXT,
    reward_wei TEXT, expected_s REAL, ntk_per_hour REAL, floor REAL, decision TEXT NOT NULL, reason TEXT
);
CREATE TABLE IF NOT EXISTS floor_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, device_key TEXT NOT NULL, old REAL NOT NULL,
    new REAL NOT NULL, reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""
# columns added to market_jobs after its first release (added in place to older files)
_NEW_COLUMNS = {"buyer": "TEXT", "engine": "TEXT", "deadline": "INTEGER", "expected_s": "REAL",
                "submitted_at": "INTEGER", "review_window_s": "INTEGER", "dirty": "INTEGER NOT NULL DEFAULT 0"}


@dataclass(frozen=True)
class MarketJobRow:
    """One market job this miner claimed, as stored."""

    job_id: int
    state: str
    kind: str
    engine: str | None
    buyer: str | None
    reward_wei: int
    spec_sha: str
    spec_uri: str
    device_key: str | None
    output_sha: str | None
    result_uri: str | None
    reason: str | None
    deadline: int | None
    expected_s: float | None
    claimed_at: float | None
    first_progress_at: float | None
    uploaded_at: float | None
    submitted_at: int | None
    review_window_s: int | None
    paid_at: float | None
    tx_claim: str | None
    tx_submit: str | None
    tx_paid: str | None
    dirty: bool
    updated_at: float


@dataclass(frozen=True)
class OpenJob:
    job_id: int
    buyer: str | None
    kind: str
    reward_wei: int
    deadline: int
    spec_sha: str
    spec_uri: str
    skip_reason: str | None
    tries: int
    retry_at: float
    last_decision: str | None


@dataclass(frozen=True)
class PricingDecision:
    """Why a job was (or was not) claimed: its NTK/h on the best device against that floor."""

    at: float
    job_id: int | None
    device_key: str | None
    kind: str | None
    reward_wei: int | None
    expected_s: float | None
    ntk_per_hour: float | None
    floor: float | None
    decision: str
    """claim, below floor, too slow, skipped, retry."""
    reason: str | None


@dataclass(frozen=True)
class FloorChangeRow:
    at: float
    device_key: str
    old: float
    new: float
    reason: str

    def text(self) -> str:
        return f"floor changed from {self.old:g} to {self.new:g} NTK/h because {self.reason}"


@dataclass(frozen=True)
class MinerJobView(MarketJobRow):
    """One row of a market-job table: the stored row and the job's progress (0..1, None: unknown)."""

    progress: float | None = None


class MinerDB:
    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._db = open_db(path, any_thread=True, rows=True)
        self._db.executescript(_SCHEMA)
        have = {r["name"] for r in self._db.execute("PRAGMA table_info(market_jobs)")}
        for col, typ in _NEW_COLUMNS.items():
            if col not in have:
                self._db.execute(f"ALTER TABLE market_jobs ADD COLUMN {col} {typ}")

    def _x(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _all(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ---- market jobs ---------------------------------------------------------------------
    def rows(self, *, active_only: bool = False, limit: int | None = None) -> list[MarketJobRow]:
        sql = "SELECT * FROM market_jobs"
        if active_only:
            sql += f" WHERE state NOT IN ({','.join('?' * len(FINAL))})"
        sql += " ORDER BY job_id DESC" + (f" LIMIT {int(limit)}" if limit else "")
        rs = self._all(sql, sorted(FINAL) if active_only else ())
        return [_market_row(r) for r in reversed(rs)]

    def row(self, job_id: int) -> MarketJobRow | None:
        rs = self._all("SELECT * FROM market_jobs WHERE job_id=?", (job_id,))
        return _market_row(rs[0]) if rs else None

    def insert_claiming(self, o: OpenJob, *, engine: str, expected_s: float, device_key: str) -> None:
        self._x("INSERT INTO market_jobs (job_id, state, kind, engine, buyer, reward_wei, spec_sha, spec_uri, deadline, "
                "expected_s, device_key, updated_at) VALUES (?, 'claiming', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (o.job_id, o.kind, engine, o.buyer, str(o.reward_wei), o.spec_sha, o.spec_uri, o.deadline, expected_s,
                 device_key, time.time()))

    def set(self, job_id: int, **cols: Any) -> None:
        cols["updated_at"] = time.time()
        names = ", ".join(f"{k}=?" for k in cols)
        self._x(f"UPDATE market_jobs SET {names} WHERE job_id=?", (*cols.values(), job_id))

    def set_first_progress(self, job_id: int, at: float) -> None:
        self._x("UPDATE market_jobs SET first_progress_at=? WHERE job_id=? AND first_progress_at IS NULL", (at, job_id))

    def delete(self, job_id: int) -> None:
        self._x("DELETE FROM market_jobs WHERE job_id=?", (job_id,))

    def mark_dirty(self, job_id: int) -> None:
        self._x("UPDATE market_jobs SET dirty=1 WHERE job_id=?", (job_id,))

    # ---- open jobs -----------------------------------------------------------------------
    def add_open(self, job_id: int, *, buyer: str | None, kind: str, reward_wei: int, deadline: int, spec_sha: str,
                 spec_uri: str) -> None:
        self._x("INSERT OR IGNORE INTO open_jobs (job_id, buyer, kind, reward_wei, deadline, spec_sha, spec_uri) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (job_id, buyer, kind, str(reward_wei), deadline, spec_sha, spec_uri))

    def drop_open(self, job_id: int) -> None:
        self._x("DELETE FROM open_jobs WHERE job_id=?", (job_id,))

    def open_jobs(self, *, now: float | None = None, include_skipped: bool = False) -> list[OpenJob]:
        sql, params = "SELECT * FROM open_jobs WHERE 1=1", []
        if not include_skipped:
            sql += " AND skip_reason IS NULL"
        if now is not None:
            sql += " AND retry_at <= ?"
            params.append(now)
        return [OpenJob(r["job_id"], r["buyer"], r["kind"], int(r["reward_wei"]), r["deadline"], r["spec_sha"],
                        r["spec_uri"], r["skip_reason"], r["tries"], r["retry_at"], r["last_decision"])
                for r in self._all(sql + " ORDER BY job_id", params)]

    def skip_open(self, job_id: int, reason: str) -> None:
        self._x("UPDATE open_jobs SET skip_reason=? WHERE job_id=?", (reason, job_id))

    def retry_open(self, job_id: int, tries: int, retry_at: float) -> None:
        self._x("UPDATE open_jobs SET tries=?, retry_at=? WHERE job_id=?", (tries, retry_at, job_id))

    def set_decision(self, job_id: int, decision: str) -> None:
        self._x("UPDATE open_jobs SET last_decision=? WHERE job_id=?", (decision, job_id))

    # ---- logs ----------------------------------------------------------------------------
    def log_pricing(self, d: PricingDecision) -> None:
        self._x("INSERT INTO pricing_log (at, job_id, device_key, kind, reward_wei, expected_s, ntk_per_hour, floor, "
                "decision, reason) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (d.at, d.job_id, d.device_key, d.kind, None if d.reward_wei is None else str(d.reward_wei), d.expected_s,
                 d.ntk_per_hour, d.floor, d.decision, d.reason))

    def pricing_decisions(self, limit: int = 100) -> list[PricingDecision]:
        rs = self._all("SELECT * FROM pricing_log ORDER BY id DESC LIMIT ?", (limit,))
        return [PricingDecision(r["at"], r["job_id"], r["device_key"], r["kind"],
                                None if r["reward_wei"] is None else int(r["reward_wei"]), r["expected_s"],
                                r["ntk_per_hour"], r["floor"], r["decision"], r["reason"]) for r in rs]

    def log_floor(self, c: FloorChangeRow) -> None:
        self._x("INSERT INTO floor_changes (at, device_key, old, new, reason) VALUES (?,?,?,?,?)",
                (c.at, c.device_key, c.old, c.new, c.reason))

    def floor_changes(self, limit: int = 100, device_key: str | None = None) -> list[FloorChangeRow]:
        sql, params = "SELECT * FROM floor_changes", []
        if device_key is not None:
            sql += " WHERE device_key=?"
            params.append(device_key)
        rs = self._all(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [FloorChangeRow(r["at"], r["device_key"], r["old"], r["new"], r["reason"]) for r in rs]

    # ---- meta ----------------------------------------------------------------------------
    def meta(self, k: str) -> str | None:
        rs = self._all("SELECT v FROM meta WHERE k=?", (k,))
        return rs[0]["v"] if rs else None

    def set_meta(self, k: str, v: str) -> None:
        self._x("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def deployment_db(data_dir: Path, namespace: str) -> Path:
    """data_dir/miner.sqlite, made the file of deployment `namespace`: another deployment's
    file is renamed miner-<its namespace>.sqlite, and this one's, if kept so, comes back."""
    cur = data_dir / "miner.sqlite"
    if cur.exists():
        con = open_db(cur)
        try:
            row = con.execute("SELECT v FROM meta WHERE k='deployment'").fetchone()
        except sqlite3.OperationalError:
            row = None
        finally:
            con.close()
        if row is None or row[0] == namespace:
            _stamp(cur, namespace)
            return cur
        for suffix in ("", "-wal", "-shm"):
            p = data_dir / f"miner.sqlite{suffix}"
            if p.exists():
                p.rename(data_dir / f"miner-{row[0]}.sqlite{suffix}")
        log.info("market deployment changed: miner DB of %s kept as miner-%s.sqlite", row[0], row[0])
    for suffix in ("", "-wal", "-shm"):
        p = data_dir / f"miner-{namespace}.sqlite{suffix}"
        if p.exists():
            p.rename(data_dir / f"miner.sqlite{suffix}")
    _stamp(cur, namespace)
    return cur


def _stamp(path: Path, namespace: str) -> None:
    db = MinerDB(path)
    try:
        if db.meta("deployment") is None:
            db.set_meta("deployment", namespace)
    finally:
        db.close()


def _market_row(r: sqlite3.Row) -> MarketJobRow:
    return MarketJobRow(
        job_id=r["job_id"], state=r["state"], kind=r["kind"], engine=r["engine"], buyer=r["buyer"],
        reward_wei=int(r["reward_wei"]), spec_sha=r["spec_sha"], spec_uri=r["spec_uri"], device_key=r["device_key"],
        output_sha=r["output_sha"], result_uri=r["result_uri"], reason=r["reason"], deadline=r["deadline"],
        expected_s=r["expected_s"], claimed_at=r["claimed_at"], first_progress_at=r["first_progress_at"],
        uploaded_at=r["uploaded_at"], submitted_at=r["submitted_at"], review_window_s=r["review_window_s"],
        paid_at=r["paid_at"], tx_claim=r["tx_claim"], tx_submit=r["tx_submit"], tx_paid=r["tx_paid"],
        dirty=bool(r["dirty"]), updated_at=r["updated_at"])
