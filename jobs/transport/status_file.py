"""Reading a transport node's `status.json` from another process (`kminer transfers`, the GUI).

The node rewrites the file about once a second (`TransportNode._write_status`). A reader
trusts nothing in it: the file is opened without following links, must be a regular file of
at most `MAX_STATUS_BYTES`, is parsed by common.safejson with depth and item limits, and every
field is checked and clipped (strings cut, numbers bounded, at most `MAX_TRANSFERS` transfers
and `MAX_PEERS` peers each). Anything wrong is one `StatusFileError` line; nothing raises past it.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from common.safejson import JsonLimits, SafeJsonError, loads_bounded
from jobs.transport.engine import PeerState, TransferState
from jobs.transport.state import Entry

STATUS_FILE = "status.json"
MAX_STATUS_BYTES = 8 << 20
MAX_TRANSFERS = 5_000
MAX_PEERS = 64
MAX_TEXT = 300
STATUS_LIMITS = JsonLimits(max_bytes=MAX_STATUS_BYTES, max_depth=8, max_items=400_000, max_string_bytes=8 << 10)
_MAX_INT = 1 << 62


class StatusFileError(Exception):
    """The status file is missing or unusable (one line)."""


@dataclass(frozen=True)
class StatusSnapshot:
    """What the node last wrote: its limits and every transfer, with when it was written."""

    updated_ts: float
    listen_port: int
    used_bytes: int
    quota_bytes: int
    upload_bytes_s_cap: int
    download_bytes_s_cap: int
    transfers: tuple[tuple[Entry, TransferState | None], ...]
    skipped: int = 0
    """Transfers left out: malformed rows, or beyond MAX_TRANSFERS."""


def status_path(node_home: Path) -> Path:
    """Where the node with this home folder writes its status."""
    return Path(node_home) / STATUS_FILE


def read_status(node_home: Path) -> StatusSnapshot:
    """The node's last status; `StatusFileError` when there is none or it is unusable."""
    path = status_path(node_home)
    raw = _read_capped(path)
    try:
        doc = loads_bounded(raw, STATUS_LIMITS, what="transport status")
    except SafeJsonError as e:
        raise StatusFileError(f"{path}: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("transfers"), list):
        raise StatusFileError(f"{path}: not a transport status (no transfers list)")
    try:
        head = dict(updated_ts=_num(doc.get("updated_ts"), 0.0, 1e11), listen_port=_int(doc.get("listen_port"), 0, 65535),
                    used_bytes=_int(doc.get("used_bytes")), quota_bytes=_int(doc.get("quota_bytes")),
                    upload_bytes_s_cap=_int(doc.get("upload_bytes_s_cap")),
                    download_bytes_s_cap=_int(doc.get("download_bytes_s_cap")))
    except ValueError as e:
        raise StatusFileError(f"{path}: {e}") from None
    rows, skipped = [], max(0, len(doc["transfers"]) - MAX_TRANSFERS)
    for t in doc["transfers"][:MAX_TRANSFERS]:
        try:
            rows.append(_transfer(t))
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped += 1
    return StatusSnapshot(**head, transfers=tuple(rows), skipped=skipped)


def _read_capped(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise StatusFileError(f"no transport status at {path}: the transport has not run in this home yet") from None
    except OSError as e:
        raise StatusFileError(f"cannot open {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StatusFileError(f"{path} is not a regular file")
        if st.st_size > MAX_STATUS_BYTES:
            raise StatusFileError(f"{path} is {st.st_size} bytes, more than a status file may be ({MAX_STATUS_BYTES})")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_STATUS_BYTES + 1)
    except OSError as e:
        raise StatusFileError(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_STATUS_BYTES:
        raise StatusFileError(f"{path} grew past {MAX_STATUS_BYTES} bytes while being read")
    return data


def _transfer(t: dict) -> tuple[Entry, TransferState | None]:
    e, s = t["entry"], t.get("state")
    entry = Entry(info_hash=_hex64(e["info_hash"]), name=_text(e.get("name")), role=_role(e.get("role")),
                  size_bytes=_int(e.get("size_bytes")), until_ts=_num(e.get("until_ts"), 0.0, 1e11),
                  reader=_text(e.get("reader"), 64), kind=_text(e.get("kind"), 40),
                  created_ts=_num(e.get("created_ts"), 0.0, 1e11), done=bool(e.get("done") is True),
                  peers=tuple(_text(p, 80) for p in (e.get("peers") or ())[:MAX_PEERS]),
                  max_bytes=_int(e.get("max_bytes")), error=_text(e.get("error")),
                  fetched_bytes=_int(e.get("fetched_bytes")))
    if s is None:
        return entry, None
    if not isinstance(s, dict):
        raise ValueError("state")
    peers = tuple(PeerState(addr=_text(p.get("addr"), 80), up_bytes_s=_int(p.get("up_bytes_s")),
                            down_bytes_s=_int(p.get("down_bytes_s")), progress=_num(p.get("progress"), 0.0, 1.0))
                  for p in (s.get("peers") or ())[:MAX_PEERS] if isinstance(p, dict))
    state = TransferState(info_hash=entry.info_hash, name=_text(s.get("name")), seeding=s.get("seeding") is True,
                          progress=_num(s.get("progress"), 0.0, 1.0), total_bytes=_int(s.get("total_bytes")),
                          up_bytes_s=_int(s.get("up_bytes_s")), down_bytes_s=_int(s.get("down_bytes_s")),
                          uploaded_bytes=_int(s.get("uploaded_bytes")), downloaded_bytes=_int(s.get("downloaded_bytes")),
                          hash_failures=_int(s.get("hash_failures")), error=_text(s.get("error")), peers=peers)
    return entry, state


def _int(v, lo: int = 0, hi: int = _MAX_INT) -> int:
    if v is None:
        return lo
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise ValueError(f"a number was expected, not {str(v)[:20]!r}")
    return int(min(max(v, lo), hi))


def _num(v, lo: float, hi: float) -> float:
    if v is None:
        return lo
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"a number was expected, not {str(v)[:20]!r}")
    return float(min(max(v, lo), hi))


def _text(v, n: int = MAX_TEXT) -> str:
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ValueError("a string was expected")
    # control characters (terminal escapes) never reach a screen
    return "".join(c if c.isprintable() else "?" for c in v[:n])


def _hex64(v) -> str:
    if not isinstance(v, str) or len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise ValueError("info hash")
    return v


def _role(v) -> str:
    if v not in ("serve", "fetch"):
        raise ValueError("role")
    return v
