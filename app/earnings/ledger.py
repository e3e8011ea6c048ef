"""The earnings ledger: NTK payments per device and job, and energy per device per day (SQLite, WAL).

Payments: the on-chain indexer knows payments (JobAccepted / PaymentReleased: job id, miner,
reward, tx hash) but not which device ran the job; the MinerService knows the device. So the
MinerService calls `assign_job(job_id, device_key)` when a device takes a job, and either
`record_payment(...)` itself or `import_events(indexer events)`; the ledger joins the two by job
id. A payment is keyed by (job_id, tx_hash): recording it twice is a no-op.

Order-market payments (app.orders: vouchers redeemed in batches, or a release after the review
window) are kept per shard, keyed by (order market, order id, shard): the contract pays a shard
once, so a shard recorded twice (a redemption seen again after a restart, a batch that paid
several shards in one transfer) is a no-op. `payments()` and every sum include both markets
(`Payment.market`: "job" or "order").

Energy: `add_power_samples` integrates power readings (W, one per device per poll) into Wh per
device per day with the trapezoid rule. A reading that is missing (None: NA, a lost GPU) or a
gap longer than `max_gap_s` between two readings adds nothing: time without readings never
counts as hours of power. Intervals that cross midnight are split between the two days.

Amounts are integer wei, stored as decimal TEXT (they can exceed SQLite's 64-bit integers).
Times are unix seconds; days are "YYYY-MM-DD" in the ledger's time zone (local by default).
Threading: every method is thread-safe (one connection behind a lock); several processes may
open the same file (WAL, busy timeout).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Iterable

from common.sqlite import open_db

__all__ = ["Ledger", "LedgerConflict", "Payment", "ImportResult", "EnergyDay"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS job_devices(
    job_id INTEGER PRIMARY KEY, device_key TEXT NOT NULL, assigned_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS payments(
    job_id INTEGER NOT NULL, tx_hash TEXT NOT NULL, device_key TEXT NOT NULL, amount_wei TEXT NOT NULL,
    timestamp REAL NOT NULL, day TEXT NOT NULL, PRIMARY KEY(job_id, tx_hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS payments_device_day ON payments(device_key, day);
CREATE TABLE IF NOT EXISTS energy(
    device_key TEXT NOT NULL, day TEXT NOT NULL, wh REAL NOT NULL, seconds REAL NOT NULL,
    PRIMARY KEY(device_key, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS power_state(device_key TEXT PRIMARY KEY, ts REAL NOT NULL, watts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS order_payments(
    order_market TEXT NOT NULL, order_id INTEGER NOT NULL, shard INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    device_key TEXT NOT NULL, amount_wei TEXT NOT NULL, timestamp REAL NOT NULL, day TEXT NOT NULL,
    PRIMARY KEY(order_market, order_id, shard)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS order_payments_device_day ON order_payments(device_key, day);
"""
_TX = re.compile(r"^0x[0-9a-f]{64}$")
PAYMENT_EVENTS = ("JobAccepted", "PaymentReleased")


class LedgerConflict(ValueError):
    """The same (job, tx) or job was recorded before with different values."""


@dataclass(frozen=True)
class Payment:
    job_id: int
    """The job-market job id; for an order-market payment, the order id (see `market`, `shard`)."""
    tx_hash: str
    device_key: str
    amount_wei: int
    timestamp: float
    day: str
    market: str = "job"
    """"job" (the job market) or "order" (a shard of an order-market order)."""
    shard: int | None = None

    @property
    def ref(self) -> str:
        """"job:N", or "p2p:N shard S" (the ids `kminer order` uses)."""
        return f"job:{self.job_id}" if self.market == "job" else f"p2p:{self.job_id} shard {self.shard}"


@dataclass(frozen=True)
class ImportResult:
    recorded: int
    already: int
    unassigned: tuple[int, ...]
    """Job ids paid to us whose device the ledger does not know (no `assign_job` yet)."""


@dataclass(frozen=True)
class EnergyDay:
    device_key: str
    day: str
    wh: float
    seconds: float
    """Seconds covered by readings (the rest of the day had no readings or was a gap)."""


def _tx(tx_hash: Any) -> str:
    if isinstance(tx_hash, (bytes, bytearray)):
        tx_hash = "0x" + bytes(tx_hash).hex()
    s = str(tx_hash).lower()
    if not s.startswith("0x"):
        s = "0x" + s
    if not _TX.match(s):
        raise ValueError(f"not a transaction hash: {tx_hash!r}")
    return s


class Ledger:
    """See the module docstring. tz: the zone days are counted in (None: the machine's local time)."""

    def __init__(self, path: Path, *, tz: tzinfo | None = None):
        self.path = Path(path)
        self.tz = tz
        self._lock = threading.Lock()
        self._db = open_db(self.path, busy_timeout_s=10, any_thread=True)
        self._db.executescript(SCHEMA)

    # ---- days ----------------------------------------------------------------------------
    def _dt(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def day_of(self, ts: float) -> str:
        """The ledger day ("YYYY-MM-DD") of unix time `ts`."""
        return self._dt(ts).strftime("%Y-%m-%d")

    def _next_midnight(self, ts: float) -> float:
        d = self._dt(ts)
        nxt = (d + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return nxt.timestamp()

    # ---- payments ------------------------------------------------------------------------
    def assign_job(self, job_id: int, device_key: str, *, at: float) -> None:
        """Note that `device_key` runs job `job_id` (idempotent; a different device is a conflict)."""
        with self._lock:
            row = self._db.execute("SELECT device_key FROM job_devices WHERE job_id=?", (int(job_id),)).fetchone()
            if row is not None:
                if row[0] != device_key:
                    raise LedgerConflict(f"job {job_id} is already assigned to {row[0]}, not {device_key}")
                return
            self._db.execute("INSERT INTO job_devices VALUES(?,?,?)", (int(job_id), device_key, float(at)))

    def device_of(self, job_id: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT device_key FROM job_devices WHERE job_id=?", (int(job_id),)).fetchone()
        return row[0] if row else None

    def record_payment(self, job_id: int, tx_hash: Any, amount_wei: int, *, timestamp: float,
                       device_key: str | None = None) -> bool:
        """Record a payment of `amount_wei` for `job_id` in transaction `tx_hash`. device_key:
        the device that ran it (None: the one `assign_job` noted; LookupError if none).
        True when new; False when this (job, tx) was already recorded with the same values;
        LedgerConflict when it was recorded with other values."""
        if isinstance(amount_wei, bool) or not isinstance(amount_wei, int) or amount_wei < 0:
            raise ValueError(f"amount_wei must be a non-negative int, got {amount_wei!r}")
        tx = _tx(tx_hash)
        if device_key is None:
            device_key = self.device_of(job_id)
            if device_key is None:
                raise LookupError(f"job {job_id} has no device on record (call assign_job first)")
        with self._lock:
            row = self._db.execute("SELECT device_key, amount_wei FROM payments WHERE job_id=? AND tx_hash=?",
                                   (int(job_id), tx)).fetchone()
            if row is not None:
                if row[0] != device_key or int(row[1]) != amount_wei:
                    raise LedgerConflict(f"payment for job {job_id} in {tx} was recorded as {row[1]} wei to "
                                         f"{row[0]}, not {amount_wei} wei to {device_key}")
                return False
            self._db.execute("INSERT INTO payments VALUES(?,?,?,?,?,?)",
                             (int(job_id), tx, device_key, str(amount_wei), float(timestamp), self.day_of(timestamp)))
            return True

    def import_events(self, events: Iterable[Any], *, miner: str | None = None) -> ImportResult:
        """Record the payments among indexer events (wallet.indexer.Event or anything with
        name, job_id, to_addr, amount_wei, tx_hash, timestamp): JobAccepted and PaymentReleased
        to `miner` (None: any). Jobs without a known device are skipped and listed."""
        recorded = already = 0
        unassigned: list[int] = []
        who = miner.lower() if miner else None
        for ev in events:
            if ev.name not in PAYMENT_EVENTS or ev.job_id is None or ev.amount_wei is None:
                continue
            if who is not None and (ev.to_addr or "").lower() != who:
                continue
            if self.device_of(ev.job_id) is None:
                unassigned.append(int(ev.job_id))
                continue
            if self.record_payment(ev.job_id, ev.tx_hash, int(ev.amount_wei), timestamp=float(ev.timestamp or 0)):
                recorded += 1
            else:
                already += 1
        return ImportResult(recorded, already, tuple(unassigned))

    def record_order_payment(self, order_market: str, order_id: int, shard: int, tx_hash: Any, amount_wei: int, *,
                             timestamp: float, device_key: str) -> bool:
        """Record that shard `shard` of order `order_id` on OrderMarket `order_market` was paid
        `amount_wei` in `tx_hash`, run by `device_key`. True when new; False when this shard was
        recorded before with the same values; LedgerConflict when with others."""
        if isinstance(amount_wei, bool) or not isinstance(amount_wei, int) or amount_wei < 0:
            raise ValueError(f"amount_wei must be a non-negative int, got {amount_wei!r}")
        tx, om = _tx(tx_hash), str(order_market).lower()
        with self._lock:
            row = self._db.execute("SELECT tx_hash, amount_wei FROM order_payments WHERE order_market=? AND order_id=? "
                                   "AND shard=?", (om, int(order_id), int(shard))).fetchone()
            if row is not None:
                if row[0] != tx or int(row[1]) != amount_wei:
                    raise LedgerConflict(f"shard {shard} of order {order_id} was recorded as paid {row[1]} wei in "
                                         f"{row[0]}, not {amount_wei} wei in {tx}")
                return False
            self._db.execute("INSERT INTO order_payments VALUES(?,?,?,?,?,?,?,?)",
                             (om, int(order_id), int(shard), tx, device_key, str(amount_wei), float(timestamp),
                              self.day_of(timestamp)))
            return True

    def payments(self, *, device_key: str | None = None, since_day: str | None = None,
                 until_day: str | None = None, market: str | None = None) -> list[Payment]:
        """Payments of both markets (`market`: "job" or "order" only), oldest first, optionally
        for one device and days in [since_day, until_day]."""
        where, args = _filters(device_key, since_day, until_day)
        out: list[Payment] = []
        with self._lock:
            if market in (None, "job"):
                q = "SELECT job_id, tx_hash, device_key, amount_wei, timestamp, day FROM payments" + where
                out += [Payment(r[0], r[1], r[2], int(r[3]), r[4], r[5])
                        for r in self._db.execute(q, args).fetchall()]
            if market in (None, "order"):
                q = "SELECT order_id, tx_hash, device_key, amount_wei, timestamp, day, shard FROM order_payments" + where
                out += [Payment(r[0], r[1], r[2], int(r[3]), r[4], r[5], "order", r[6])
                        for r in self._db.execute(q, args).fetchall()]
        return sorted(out, key=lambda p: (p.timestamp, p.market, p.job_id, p.shard or 0))

    def wei_by_market(self, *, since_day: str | None = None, until_day: str | None = None) -> dict[str, int]:
        """NTK wei paid per market ("job", "order") in days [since_day, until_day]."""
        out = {"job": 0, "order": 0}
        for p in self.payments(since_day=since_day, until_day=until_day):
            out[p.market] += p.amount_wei
        return out

    def wei_by_device_day(self, *, since_day: str | None = None, until_day: str | None = None) -> dict[tuple[str, str], int]:
        """NTK wei earned per (device_key, day)."""
        out: dict[tuple[str, str], int] = {}
        for p in self.payments(since_day=since_day, until_day=until_day):
            out[(p.device_key, p.day)] = out.get((p.device_key, p.day), 0) + p.amount_wei
        return out

    def total_wei(self, device_key: str | None = None) -> int:
        """All NTK wei ever recorded (for one device, or all)."""
        return sum(p.amount_wei for p in self.payments(device_key=device_key))

    # ---- energy --------------------------------------------------------------------------
    def add_power_samples(self, samples: Iterable[tuple[str, float, float | None]], *, max_gap_s: float) -> float:
        """Integrate readings (device_key, unix time, watts or None) into Wh per device per day,
        in one transaction. A reading is integrated with the device's previous one when it is
        0 < dt <= max_gap_s later; None ends the run (the next reading starts a new one); a reading
        not newer than the previous is ignored. Returns the Wh added."""
        added = 0.0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, ts, watts in samples:
                    prev = self._db.execute("SELECT ts, watts FROM power_state WHERE device_key=?", (key,)).fetchone()
                    if watts is None:
                        self._db.execute("DELETE FROM power_state WHERE device_key=?", (key,))
                        continue
                    watts = float(watts)
                    if watts < 0:
                        raise ValueError(f"negative power reading {watts} W for {key}")
                    if prev is not None and ts <= prev[0]:
                        continue
                    if prev is not None and ts - prev[0] <= max_gap_s:
                        added += self._integrate(key, prev[0], prev[1], float(ts), watts)
                    self._db.execute("INSERT OR REPLACE INTO power_state VALUES(?,?,?)", (key, float(ts), watts))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def _integrate(self, key: str, t0: float, p0: float, t1: float, p1: float) -> float:
        total = 0.0
        a = t0
        while a < t1:
            b = min(t1, self._next_midnight(a))
            pa = p0 + (p1 - p0) * (a - t0) / (t1 - t0)
            pb = p0 + (p1 - p0) * (b - t0) / (t1 - t0)
            wh = (pa + pb) / 2.0 * (b - a) / 3600.0
            self._db.execute(
                "INSERT INTO energy VALUES(?,?,?,?) ON CONFLICT(device_key, day) "
                "DO UPDATE SET wh=wh+excluded.wh, seconds=seconds+excluded.seconds",
                (key, self.day_of(a), wh, b - a))
            total += wh
            a = b
        return total

    def energy(self, *, device_key: str | None = None, since_day: str | None = None,
               until_day: str | None = None) -> list[EnergyDay]:
        where, args = _filters(device_key, since_day, until_day)
        q = "SELECT device_key, day, wh, seconds FROM energy" + where
        with self._lock:
            rows = self._db.execute(q + " ORDER BY day, device_key", args).fetchall()
        return [EnergyDay(*r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _filters(device_key: str | None, since_day: str | None, until_day: str | None) -> tuple[str, list[str]]:
    """A WHERE clause (with its arguments) for one device and days in [since_day, until_day]."""
    conds, args = [], []
    for cond, value in (("device_key=?", device_key), ("day>=?", since_day), ("day<=?", until_day)):
        if value is not None:
            conds.append(cond)
            args.append(value)
    return (" WHERE " + " AND ".join(conds)) if conds else "", args
