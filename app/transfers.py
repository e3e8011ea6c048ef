"""What this home's transport serves and fetches, for people (`kminer transfers`, Jobs/Orders
views): read-only, from the node's status file (jobs.transport.status_file), so it works while
another process of the app (the GUI, `kminer agent`) runs the node.

`read_transfers(transport_dir)` never raises: a missing, stale or hostile status file comes
back as a `TransfersView` with `problem` set. Plain data; rates in bytes/s, times in unix s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from jobs.transport.status_file import StatusFileError, read_status, status_path

STALE_AFTER_S = 10.0
"""The node rewrites its status about every second; older than this, it is not running."""


@dataclass(frozen=True)
class TransferRow:
    role: str  # "serve" | "fetch"
    info_hash: str
    name: str
    kind: str  # "result", "input", "spec", "model"... ("" when the app gave none)
    reader: str  # the 0x address it is for ("" for anyone holding the key)
    size_bytes: int
    progress: float  # 0..1 of verified bytes
    up_bytes_s: int
    down_bytes_s: int
    peers: int
    until_ts: float  # serve until (unix s); 0: until stopped
    state: str  # "serving", "fetching", "done", "waiting", "error"
    error: str = ""
    hash_failures: int = 0

    @property
    def until_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.until_ts)) if self.until_ts else "until stopped"


@dataclass(frozen=True)
class TransfersView:
    path: str
    running: bool
    """The node wrote its status within STALE_AFTER_S."""
    updated_ts: float = 0.0
    listen_port: int = 0
    used_bytes: int = 0
    quota_bytes: int = 0
    upload_cap_bytes_s: int = 0
    download_cap_bytes_s: int = 0
    rows: tuple[TransferRow, ...] = ()
    skipped: int = 0
    problem: str = ""
    absent: bool = False
    """No status file: the transport never ran in this home (not an error)."""

    @property
    def serving(self) -> tuple[TransferRow, ...]:
        return tuple(r for r in self.rows if r.role == "serve")

    @property
    def fetching(self) -> tuple[TransferRow, ...]:
        return tuple(r for r in self.rows if r.role == "fetch")


def read_transfers(transport_dir: Path, *, now: float | None = None) -> TransfersView:
    """The transfers of the node whose home is `transport_dir` (AppPaths.transport_dir)."""
    path = str(status_path(transport_dir))
    try:
        s = read_status(Path(transport_dir))
    except StatusFileError as e:
        return TransfersView(path, False, problem=str(e).splitlines()[0][:400], absent=not _exists(Path(path)))
    now = time.time() if now is None else now
    rows = []
    for entry, st in s.transfers:
        if st is None:
            state = "error" if entry.error else ("done" if entry.done else "waiting")
        elif st.error or entry.error:
            state = "error"
        elif entry.role == "serve":
            state = "serving"
        else:
            state = "done" if st.seeding or entry.done else "fetching"
        progress = st.progress if st is not None else (1.0 if entry.done else 0.0)
        rows.append(TransferRow(
            role=entry.role, info_hash=entry.info_hash, name=entry.name, kind=entry.kind, reader=entry.reader,
            size_bytes=entry.size_bytes or (st.total_bytes if st else 0), progress=progress,
            up_bytes_s=st.up_bytes_s if st else 0, down_bytes_s=st.down_bytes_s if st else 0,
            peers=len(st.peers) if st else 0, until_ts=entry.until_ts, state=state,
            error=(st.error if st and st.error else entry.error), hash_failures=st.hash_failures if st else 0))
    return TransfersView(path, running=now - s.updated_ts <= STALE_AFTER_S, updated_ts=s.updated_ts,
                         listen_port=s.listen_port, used_bytes=s.used_bytes, quota_bytes=s.quota_bytes,
                         upload_cap_bytes_s=s.upload_bytes_s_cap, download_cap_bytes_s=s.download_bytes_s_cap,
                         rows=tuple(rows), skipped=s.skipped)


def progress_bar(fraction: float, width: int = 20) -> str:
    """'[########------------]' for 0..1."""
    f = min(max(fraction, 0.0), 1.0)
    n = int(round(f * width))
    return "[" + "#" * n + "-" * (width - n) + "]"


def rate_text(bytes_s: int) -> str:
    for unit, size in (("MB/s", 1_000_000), ("kB/s", 1_000)):
        if bytes_s >= size:
            return f"{bytes_s / size:.1f} {unit}"
    return f"{bytes_s} B/s"


def size_text(n: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _exists(p: Path) -> bool:
    try:
        p.lstat()
        return True
    except OSError:
        return False
