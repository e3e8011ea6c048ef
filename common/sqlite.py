"""The one way our SQLite files are opened: WAL, synchronous=FULL, a busy timeout, foreign keys.

WAL lets readers on other threads and processes read while one writes; synchronous=FULL makes
each committed transaction survive a power cut; the busy timeout makes a writer wait for
another instead of failing at once; foreign keys make the REFERENCES in our schemas hold.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["open_db"]

DEFAULT_BUSY_TIMEOUT_S = 30.0


def open_db(path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
            autocommit: bool = True, any_thread: bool = False, rows: bool = False) -> sqlite3.Connection:
    """A connection to the SQLite file at `path` (its folder made if missing).

    autocommit: True (isolation_level None): every statement commits unless the caller runs
    BEGIN ... COMMIT itself; False: Python's sqlite3 opens a transaction before each write
    and the caller commits (`with con:`).
    any_thread: the connection may be used from any thread (the caller serialises the use).
    rows: rows come back as sqlite3.Row (by column name) instead of tuples.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(p), timeout=busy_timeout_s, isolation_level=None if autocommit else "",
                          check_same_thread=not any_thread)
    try:
        if rows:
            con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        con.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        con.close()
        raise
    return con
