"""ETH this wallet sent, remembered for its history.

NTK moves and market events come from contract logs (the indexer), but a plain ETH transfer
leaves no log: finding one means reading every block, which a remote node makes slow. So the
app writes down each ETH transfer it signs (sends from the Wallet page, gas for the local
mining account) when the transaction is mined, and the history shows them beside the NTK rows.
ETH received from elsewhere is not listed (the balance still shows it).

One SQLite file (data_dir/wallet-sent.sqlite) for every chain; rows keyed by chain id and
transaction hash, so recording twice keeps one row. Amounts are integer wei stored as decimal
TEXT. Threading: any thread (one connection per call).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from common.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS eth_sent (
    chain_id INTEGER NOT NULL, tx_hash TEXT NOT NULL, block INTEGER NOT NULL, timestamp INTEGER NOT NULL,
    from_addr TEXT NOT NULL, to_addr TEXT NOT NULL, value_wei TEXT NOT NULL, fee_wei TEXT NOT NULL, what TEXT NOT NULL,
    PRIMARY KEY (chain_id, tx_hash)
);
"""


@dataclass(frozen=True)
class EthSent:
    chain_id: int
    tx_hash: str
    block: int
    timestamp: int
    from_addr: str
    to_addr: str
    value_wei: int
    fee_wei: int
    what: str
    """Why it was sent: "sent" (the Wallet page) or "gas for the mining account"."""


class SentLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        con = open_db(self.path, busy_timeout_s=10, autocommit=False)
        con.executescript(_SCHEMA)
        return con

    def record(self, *, chain_id: int, tx_hash: str, block: int, from_addr: str, to_addr: str, value_wei: int,
               fee_wei: int, what: str = "sent", timestamp: int | None = None) -> None:
        if value_wei < 0 or fee_wei < 0:
            raise ValueError("amounts cannot be negative")
        with closing(self._connect()) as con, con:
            con.execute("INSERT OR REPLACE INTO eth_sent VALUES (?,?,?,?,?,?,?,?,?)",
                        (chain_id, tx_hash, block, int(time.time()) if timestamp is None else timestamp,
                         from_addr, to_addr, str(value_wei), str(fee_wei), what))

    def rows(self, chain_id: int, from_addr: str, limit: int = 1000) -> list[EthSent]:
        """What `from_addr` sent on `chain_id`, newest first."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as con:
            cur = con.execute("SELECT * FROM eth_sent WHERE chain_id=? AND lower(from_addr)=lower(?) "
                              "ORDER BY block DESC, timestamp DESC LIMIT ?", (chain_id, from_addr, limit))
            return [EthSent(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), int(r[7]), r[8]) for r in cur.fetchall()]
