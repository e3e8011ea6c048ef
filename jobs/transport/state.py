"""What a transport node holds, persisted across restarts (`state.json`, written atomically)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from common.fsutil import atomic_write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One piece of content the node serves or fetches."""

    info_hash: str
    name: str
    role: str  # "serve" | "fetch"
    size_bytes: int
    until_ts: float = 0.0  # serve until (unix seconds); 0 = until stopped
    reader: str = ""  # the 0x address it is for (shown as "to whom")
    kind: str = ""  # the app's label: "result", "input", "model", "spec"...
    created_ts: float = 0.0
    done: bool = False  # every byte here and verified
    peers: tuple[str, ...] = ()  # hints a fetch dials; for served content, where it is pushed to
    max_bytes: int = 0  # a fetch larger than this is refused (0: the quota)
    error: str = ""
    fetched_bytes: int = 0  # what the last run that completed it downloaded (less after a resume)
    v1: str = ""  # the reference's v1 hash (a server behind NAT can then push to this fetch)


_FIELDS = {f.name for f in fields(Entry)}


def load_entries(path: Path) -> list[Entry]:
    """The saved entries; a missing file is none, a damaged one is logged and set aside."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["entries"]
        return [Entry(**{**{k: v for k, v in r.items() if k in _FIELDS}, "peers": tuple(r.get("peers", ()))}) for r in rows]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as e:
        bad = path.with_suffix(".damaged")
        path.replace(bad)
        log.warning("transport state %s was unreadable (%s); kept as %s and started empty", path, e, bad.name)
        return []


def save_entries(path: Path, entries: list[Entry]) -> None:
    atomic_write_json(path, {"version": 1, "entries": [asdict(e) for e in entries]})
