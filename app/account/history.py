"""The wallet's history as rows a person reads: the indexer's events grouped per transaction
(a market event and the NTK transfer it caused are one row, with the net amount), filters,
and CSV export with exact amounts. Pure, safe on any thread."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.amounts import format_amount
from common.fsutil import atomic_write_text

Direction = Literal["in", "out", "self", ""]
Kind = Literal["transfer", "job", "model"]


@dataclass(frozen=True)
class HistoryRow:
    block: int
    timestamp: int | None
    tx_hash: str
    kind: Kind
    event: str
    direction: Direction
    counterparty: str | None
    counterparty_label: str
    """"Job market", "Model market", or the address."""
    amount_wei: int | None
    """NTK base units that moved for the account (None: no money moved)."""
    job_id: int | None
    count: int = 1
    """How many market events of this kind the transaction holds (shards posted at once)."""
    asset: Literal["NTK", "ETH"] = "NTK"
    """What `amount_wei` counts: NTK rows come from contract logs; ETH rows are the plain ETH
    transfers this app signed (app.account.sent_log; event "EthSent")."""

    @property
    def time_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.timestamp)) if self.timestamp else ""


@dataclass(frozen=True)
class HistoryFilter:
    direction: Literal["all", "in", "out"] = "all"
    kind: Literal["all", "transfer", "job", "model"] = "all"
    text: str = ""


def _kind(event: str) -> Kind:
    if event == "Transfer":
        return "transfer"
    return "model" if event.startswith("Model") else "job"


def to_rows(events: Iterable, me: str, labels: dict[str, str]) -> list[HistoryRow]:
    """indexer Events (newest first) as rows seen from `me` (checksummed address).

    A market transaction (post a job, release a payment, buy a model) emits the market's event
    and the NTK Transfer that moves the money: they become ONE row, named by the market event,
    whose amount is the net NTK that moved for `me` (so amounts are never counted twice).
    Market events without a transfer of `me` (a result submitted, a model listed) carry no amount.
    """
    groups: dict[str, list] = {}
    for e in events:
        groups.setdefault(e.tx_hash, []).append(e)
    rows = []
    for evs in groups.values():
        market = sorted((e for e in evs if e.name != "Transfer"), key=lambda e: e.log_index)
        transfers = [e for e in evs if e.name == "Transfer"]
        if not market:
            rows += [_transfer_row(e, me, labels) for e in transfers]
            continue
        first = market[0]
        same = [e for e in market if e.name == first.name]
        if transfers:
            net = sum(e.amount_wei for e in transfers if e.to_addr == me) - \
                sum(e.amount_wei for e in transfers if e.from_addr == me)
            direction: Direction = "in" if net > 0 else ("out" if net < 0 else "self")
            amount: int | None = abs(net)
            peers = {e.to_addr if e.from_addr == me else e.from_addr for e in transfers} - {me}
            peer = next(iter(peers)) if len(peers) == 1 else first.contract
        else:
            direction, amount, peer = "", None, first.contract
        rows.append(HistoryRow(first.block, first.timestamp, first.tx_hash, _kind(first.name), first.name, direction,
                               peer, labels.get(peer, peer), amount, first.job_id, len(same)))
    return rows


def _transfer_row(e, me: str, labels: dict[str, str]) -> HistoryRow:
    frm, to = e.from_addr, e.to_addr
    direction: Direction = "self" if frm == me and to == me else ("in" if to == me else "out")
    peer = to if frm == me else frm
    peer = None if peer == me else peer
    return HistoryRow(e.block, e.timestamp, e.tx_hash, "transfer", e.name, direction, peer,
                      labels.get(peer, peer) if peer else "", e.amount_wei, None)


def filter_rows(rows: Sequence[HistoryRow], flt: HistoryFilter) -> list[HistoryRow]:
    """Rows matching the direction, kind and text (case-insensitive, any column)."""
    text = flt.text.strip().lower()
    out = []
    for r in rows:
        if flt.direction != "all" and r.direction != flt.direction:
            continue
        if flt.kind != "all" and r.kind != flt.kind:
            continue
        if text:
            hay = " ".join(str(x) for x in (r.event, r.kind, r.direction, r.asset, r.counterparty or "", r.counterparty_label,
                                             r.tx_hash, r.block, "" if r.job_id is None else f"job {r.job_id}",
                                             format_amount(r.amount_wei, group=False) if r.amount_wei is not None else "",
                                             r.time_text)).lower()
            if text not in hay:
                continue
        out.append(r)
    return out


CSV_COLUMNS = ("time_utc", "block", "event", "kind", "direction", "amount", "asset", "amount_wei", "counterparty",
               "job_id", "count", "tx_hash")


def rows_to_csv(rows: Sequence[HistoryRow]) -> str:
    """CSV text; amounts exact (the asset's units as a decimal string, and its base units as an
    integer), times in UTC."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.timestamp)) if r.timestamp else ""
        w.writerow([when, r.block, r.event, r.kind, r.direction,
                    "" if r.amount_wei is None else format_amount(r.amount_wei, group=False), r.asset,
                    "" if r.amount_wei is None else str(r.amount_wei), r.counterparty or "",
                    "" if r.job_id is None else r.job_id, r.count, r.tx_hash])
    return buf.getvalue()


def export_csv(rows: Sequence[HistoryRow], path: Path) -> Path:
    """Write `rows` as CSV to `path` atomically (a crash leaves the old file or the new one)."""
    path = Path(path)
    atomic_write_text(path, rows_to_csv(rows))
    return path
