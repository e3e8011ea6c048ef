"""Every database opens through common.sqlite.open_db: WAL, synchronous=FULL, a busy timeout
and foreign keys, on real SQLite files (the miner DB, the order book, the ledger, the sent-ETH
log, the job queue, the embedded chain's store)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from app.account.sent_log import SentLog
from app.buyer.book import OrderBook
from app.earnings.ledger import Ledger
from app.miner.db import MinerDB
from common.sqlite import open_db
from jobs.queue import JobQueue


def _pragmas(con: sqlite3.Connection) -> tuple:
    return tuple(con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous", "busy_timeout",
                                                                      "foreign_keys"))


def test_every_database_is_wal_full_with_a_busy_timeout_and_foreign_keys(tmp_path):
    from wallet.embedded import SQLiteAtomicDB

    miner, book, ledger, queue = (MinerDB(tmp_path / "m.sqlite"), OrderBook(tmp_path / "o.sqlite"),
                                  Ledger(tmp_path / "l.sqlite"), JobQueue(tmp_path / "q.sqlite"))
    chain = SQLiteAtomicDB(tmp_path / "chain.sqlite")
    try:
        cons = {"miner": miner._db, "book": book._db, "ledger": ledger._db, "queue": queue._db, "chain": chain._conn}
        got = {name: _pragmas(con) for name, con in cons.items()}
        with closing(SentLog(tmp_path / "sub" / "sent.sqlite")._connect()) as con:
            got["sent"] = _pragmas(con)
    finally:
        miner.close(), book.close(), ledger.close(), queue.close()
    for name, (journal, sync, busy_ms, fk) in got.items():
        assert (journal, sync, fk) == ("wal", 2, 1), name
        assert busy_ms >= 10_000, name


def test_a_reference_to_nothing_is_refused(tmp_path):
    with closing(open_db(tmp_path / "x" / "fk.sqlite")) as con:
        con.executescript("CREATE TABLE a (id INTEGER PRIMARY KEY); "
                          "CREATE TABLE b (a_id INTEGER NOT NULL REFERENCES a(id))")
        con.execute("INSERT INTO a VALUES (1)")
        con.execute("INSERT INTO b VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            con.execute("INSERT INTO b VALUES (2)")
