"""TransportNode: the API the app calls to serve and fetch content peer to peer.

One node per home folder (a file lock says so); it survives restarts: what it served or was
fetching is in `state.json` and comes back when the node opens again (a half-fetched file
is rehashed and only its missing pieces are fetched).

    node = TransportNode(home, NodeConfig(...))
    shared = node.share(folder, until_ts=..., reader="0xbuyer")   # sealed, served, key kept
    ref = node.publish(file, until_ts=...)                          # plain bytes (already sealed)
    node.share(folder, reader="0xbuyer", push_to=("203.0.113.5:6882",)) # we dial the buyer (we are behind NAT)
    path = node.fetch(ref, timeout_s=600)                           # verified file, or TransportError
    node.status()                                                   # what is served, to whom, progress

Layout under `home`: data/<info hash>/<name> (served and fetched files), meta/<info
hash>.torrent, keys/ (content keys, 0600), state.json, status.json (read by `python -m
jobs.transport status` from another process). Threads: a housekeeping thread expires
content at its `until_ts`, re-dials peer hints for stalled fetches and writes status.json;
every public method may be called from any thread.

Push: content served with `push_to` (the recipient's listen addresses) is offered by dialing
out to the recipient every few seconds until a connected peer holds all of it, so a server
behind NAT (no inbound connection possible) still delivers to a reachable recipient: once the
connection is up, BitTorrent moves pieces both ways over it.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from filelock import FileLock, Timeout

from common.fsutil import atomic_write_bytes
from jobs.transport.crypto import new_content_key
from jobs.transport.engine import Engine, EngineConfig, EngineError, TransferState
from jobs.transport.keys import KeyRing
from jobs.transport.ref import ContentRef
from jobs.transport.sealed import Header, seal
from jobs.transport.state import Entry, load_entries, save_entries
from jobs.transport.status_file import status_path

log = logging.getLogger(__name__)
SamplePlan = Callable[[list[str]], "tuple[dict[str, str], tuple[str, ...]] | None"]
"""sample_plan(item names of a sealed result) -> (item -> unit, free items) or None (`Node.share`)."""
REDIAL_S = 5.0
TICK_S = 1.0


class TransportError(Exception):
    """A transfer that cannot be done (quota, timeout, bad reference); one-line message."""


@dataclass(frozen=True)
class NodeConfig:
    engine: EngineConfig = EngineConfig()
    quota_bytes: int = 20 << 30  # disk the node may fill under data/
    advertise: tuple[str, ...] = ()  # host:port put in references as where to reach us
    relays: tuple[str, ...] = ()  # host:port of relays (reachable seeders; control on port + 1)
    identity_key: bytes | None = field(default=None, repr=False)  # signs mirror requests to relays
    key_servers: tuple[str, ...] = ()  # host:port of our key service, put in references


@dataclass(frozen=True)
class Shared:
    """Content shared sealed: its reference, the content key (keep it secret until payment)
    and the header (item names and key hashes) for sample keys."""

    ref: ContentRef
    content_key: bytes = field(repr=False)
    header: Header


@dataclass(frozen=True)
class TransferStatus:
    """One entry for the GUI/CLI: what, to or from whom, how far."""

    entry: Entry
    state: TransferState | None  # None while the engine does not hold it (expired, error)


@dataclass(frozen=True)
class NodeStatus:
    listen_port: int
    used_bytes: int
    quota_bytes: int
    upload_bytes_s_cap: int
    download_bytes_s_cap: int
    transfers: tuple[TransferStatus, ...]


def _default_engine(cfg: EngineConfig) -> Engine:
    from jobs.transport.lt_engine import LibtorrentEngine

    return LibtorrentEngine(cfg)


class TransportNode:
    """See the module docstring."""

    def __init__(self, home: Path, config: NodeConfig = NodeConfig(), *, engine_factory=_default_engine):
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self._file_lock = FileLock(str(self.home / "node.lock"))
        try:
            self._file_lock.acquire(timeout=0)
        except Timeout:
            raise TransportError(f"another transport node is running on {self.home}") from None
        self.config = config
        self._lock = threading.RLock()
        try:
            self.engine = engine_factory(config.engine)
        except EngineError as e:
            self._file_lock.release()
            raise TransportError(str(e)) from None
        self.keys = KeyRing(self.home / "keys")
        self._entries: dict[str, Entry] = {e.info_hash: e for e in load_entries(self.home / "state.json")}
        self._last_dial: dict[str, float] = {}
        self._stop = threading.Event()
        self._restore()
        self._thread = threading.Thread(target=self._housekeeping, name="transport-node", daemon=True)
        self._thread.start()

    # ---- serving ---------------------------------------------------------------------------
    def publish(self, path: Path, *, until_ts: float = 0, reader: str = "", kind: str = "",
                push_to: tuple[str, ...] = ()) -> ContentRef:
        """Serve the file `path` (copied into the node) until `until_ts` (0 = until stopped);
        `push_to`: addresses dialed until one of them holds it all (see Push above)."""
        path = Path(path)
        if not path.is_file():
            raise TransportError(f"{path}: not a file")
        size = path.stat().st_size
        self._check_quota(size)
        ih, meta = self.engine.make_metadata(path)
        dest = self._data(ih) / path.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(path, tmp)
            tmp.replace(dest)
        return self._serve(ih, meta, dest, size, until_ts=until_ts, reader=reader, kind=kind, push_to=push_to)

    def share(self, src: Path, *, until_ts: float = 0, reader: str = "", kind: str = "",
              push_to: tuple[str, ...] = (), sample_plan: SamplePlan | None = None) -> Shared:
        """Seal `src` (a file or folder) with a fresh content key, serve the sealed archive,
        and keep the key for the key service (readable by `reader`, a 0x address, once granted).
        `sample_plan(item names)`: what `reader` may open before it is granted the key ((item ->
        unit, free items), or None: each item one unit), kept with the key in one step, before
        anything is served or pushed (see `KeyRing.put`)."""
        key = new_content_key()
        tmp_dir = self.home / "data" / ".sealing"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        sealed = tmp_dir / f"{Path(src).name}.kmseal"
        try:
            header = seal(Path(src), sealed, key)
            ih, meta = self.engine.make_metadata(sealed)
            size = sealed.stat().st_size
            self._check_quota(size)
            dest = self._data(ih) / sealed.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            sealed.replace(dest)
        finally:
            sealed.unlink(missing_ok=True)
        plan = sample_plan([it.name for it in header.items]) if sample_plan is not None else None
        units, free = plan if plan is not None else (None, ())
        self.keys.put(ih, key, header, reader=reader, units=units, free=free)
        ref = self._serve(ih, meta, dest, size, until_ts=until_ts, reader=reader, kind=kind or "sealed", push_to=push_to)
        return Shared(ref, key, header)

    def _serve(self, ih: str, meta: bytes, path: Path, size: int, *, until_ts: float, reader: str, kind: str,
               push_to: tuple[str, ...] = ()) -> ContentRef:
        atomic_write_bytes(self.home / "meta" / f"{ih}.torrent", meta)
        self.engine.seed(path, meta)
        e = Entry(info_hash=ih, name=path.name, role="serve", size_bytes=size, until_ts=until_ts,
                  reader=reader, kind=kind, created_ts=time.time(), done=True, peers=tuple(push_to))
        self._put(e)
        for p in push_to:
            self.engine.connect(ih, p)
        ref = ContentRef(ih, path.name, size, self.config.advertise, self.config.key_servers, self.engine.alt_hash(meta))
        for relay in self.config.relays:
            self._ask_relay(relay, ref, until_ts)
        return ref.with_peers(*self.config.relays)

    def _ask_relay(self, relay: str, ref: ContentRef, until_ts: float) -> None:
        """Have a relay mirror `ref`; we then dial it (housekeeping), so it can fetch from us
        even when we are behind NAT. A relay that refuses is logged and skipped."""
        from jobs.transport.keys import KeyRefused, control_of, request_mirror

        if self.config.identity_key is None:
            raise TransportError("relays need the node's identity key to sign mirror requests")
        try:
            request_mirror(control_of(relay), ref.uri(), until_ts, self.config.identity_key)
        except KeyRefused as e:
            log.warning("relay %s: %s", relay, e)
        self.engine.connect(ref.info_hash, relay)

    def extend(self, info_hash: str, until_ts: float) -> None:
        """Serve `info_hash` until `until_ts` (e.g. once payment is released: + grace)."""
        with self._lock:
            e = self._entries.get(info_hash)
            if e is None:
                raise TransportError(f"content {info_hash[:12]}… is not held by this node")
            self._put(replace(e, until_ts=until_ts))

    def stop(self, info_hash: str) -> None:
        """Stop serving or fetching `info_hash` and delete its files."""
        with self._lock:
            self._entries.pop(info_hash, None)
            self._save()
        self.engine.remove(info_hash)
        shutil.rmtree(self._data(info_hash), ignore_errors=True)
        (self.home / "meta" / f"{info_hash}.torrent").unlink(missing_ok=True)
        (self.home / "resume" / f"{info_hash}.resume").unlink(missing_ok=True)
        self.keys.drop(info_hash)

    # ---- fetching --------------------------------------------------------------------------
    def start_fetch(self, ref: ContentRef, *, until_ts: float = 0, max_bytes: int | None = None, kind: str = "") -> None:
        """Begin fetching (idempotent); `wait` or `fetch` for the result."""
        with self._lock:
            if ref.info_hash in self._entries:
                return
            if ref.size_bytes:
                self._check_quota(ref.size_bytes)
            e = Entry(info_hash=ref.info_hash, name=ref.name, role="fetch", size_bytes=ref.size_bytes,
                      until_ts=until_ts, kind=kind, created_ts=time.time(), peers=ref.peers,
                      max_bytes=max_bytes or 0, v1=ref.v1)
            self._put(e)
        self.engine.fetch(ref.info_hash, self._data(ref.info_hash), ref.peers, self._meta(ref.info_hash), alt_hash=ref.v1)
        self._last_dial[ref.info_hash] = time.monotonic()

    def wait(self, info_hash: str, timeout_s: float | None = None) -> Path:
        """Block until `info_hash` is complete and verified; its path. Raises on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            with self._lock:
                e = self._entries.get(info_hash)
            if e is None:
                raise TransportError(f"content {info_hash[:12]}… is not being fetched")
            if e.error:
                raise TransportError(e.error)
            if e.done:
                return self._data(info_hash) / e.name
            if deadline is not None and time.monotonic() > deadline:
                st = self._state(info_hash)
                got = f"{100 * st.progress:.0f}%" if st else "nothing"
                raise TransportError(f"content {info_hash[:12]}…: timed out with {got} fetched; it resumes on the next try")
            self._tick()
            time.sleep(0.1)

    def fetch(self, ref: ContentRef, *, timeout_s: float | None = None, until_ts: float = 0,
              max_bytes: int | None = None) -> Path:
        """Fetch `ref` into the node and return the verified file's path."""
        self.start_fetch(ref, until_ts=until_ts, max_bytes=max_bytes)
        return self.wait(ref.info_hash, timeout_s)

    # ---- limits and status -----------------------------------------------------------------
    def set_limits(self, *, upload_bytes_s: int, download_bytes_s: int, quota_bytes: int | None = None) -> None:
        self.engine.set_rates(upload_bytes_s, download_bytes_s)
        eng = replace(self.config.engine, upload_bytes_s=upload_bytes_s, download_bytes_s=download_bytes_s)
        self.config = replace(self.config, engine=eng, quota_bytes=quota_bytes if quota_bytes is not None else self.config.quota_bytes)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size_bytes for e in self._entries.values())

    def status(self) -> NodeStatus:
        states = {t.info_hash: t for t in self.engine.transfers()}
        with self._lock:
            entries = list(self._entries.values())
        return NodeStatus(self.engine.listen_port(), self.used_bytes(), self.config.quota_bytes,
                          self.config.engine.upload_bytes_s, self.config.engine.download_bytes_s,
                          tuple(TransferStatus(e, states.get(e.info_hash)) for e in entries))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._write_status()
        self.engine.close()
        self._file_lock.release()

    def __enter__(self) -> TransportNode:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- internals -------------------------------------------------------------------------
    def _data(self, ih: str) -> Path:
        return self.home / "data" / ih

    def _meta(self, ih: str) -> bytes | None:
        p = self.home / "meta" / f"{ih}.torrent"
        return p.read_bytes() if p.is_file() else None

    def _check_quota(self, size: int) -> None:
        used = self.used_bytes()
        if used + size > self.config.quota_bytes:
            raise TransportError(f"disk quota: {size / 2**20:.1f} MiB more would exceed {self.config.quota_bytes / 2**20:.0f} MiB "
                                 f"({used / 2**20:.1f} MiB in use); raise it in Settings or stop some transfers")

    def _state(self, ih: str) -> TransferState | None:
        return next((t for t in self.engine.transfers() if t.info_hash == ih), None)

    def _put(self, e: Entry) -> None:
        with self._lock:
            self._entries[e.info_hash] = e
            self._save()

    def _save(self) -> None:
        save_entries(self.home / "state.json", list(self._entries.values()))

    def _restore(self) -> None:
        for e in list(self._entries.values()):
            if e.until_ts and e.until_ts < time.time():
                continue  # the housekeeping tick removes it
            meta = self._meta(e.info_hash)
            try:
                if e.done and meta is not None and (e.role == "serve" or e.until_ts):
                    self.engine.seed(self._data(e.info_hash) / e.name, meta)
                elif e.role == "fetch" and not e.done and not e.error:
                    rp = self.home / "resume" / f"{e.info_hash}.resume"
                    resume = rp.read_bytes() if rp.is_file() else None
                    self.engine.fetch(e.info_hash, self._data(e.info_hash), e.peers, meta, resume, alt_hash=e.v1)
            except EngineError as err:
                log.warning("content %s… not restored: %s", e.info_hash[:12], err)

    def _housekeeping(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self._tick()
                self._write_status()
            except Exception:  # the node must keep serving whatever one tick hit
                log.exception("transport housekeeping")

    def _tick(self) -> None:
        now = time.time()
        states = {t.info_hash: t for t in self.engine.transfers()}
        with self._lock:
            entries = list(self._entries.values())
        for e in entries:
            if e.until_ts and e.until_ts < now:
                log.info("content %s… (%s) reached its serve-until time; removed", e.info_hash[:12], e.name)
                self.stop(e.info_hash)
                continue
            st = states.get(e.info_hash)
            if st is None:
                continue
            if e.role == "serve" and (self.config.relays or e.peers):
                self._redial_out(e, st)
            elif e.role == "fetch" and not e.done:
                self._check_fetch(e, st)

    def _redial_out(self, e: Entry, st: TransferState) -> None:
        """Keep dialing out to each relay and push target until a connected peer holds the
        whole content (so a node behind NAT still delivers)."""
        if any(p.progress >= 1.0 for p in st.peers):
            return
        if time.monotonic() - self._last_dial.get(e.info_hash, 0) > REDIAL_S:
            self._last_dial[e.info_hash] = time.monotonic()
            for addr in (*self.config.relays, *e.peers):
                self.engine.connect(e.info_hash, addr)

    def _check_fetch(self, e: Entry, st: TransferState) -> None:
        ih = e.info_hash
        if st.total_bytes and e.size_bytes != st.total_bytes:
            limit = e.max_bytes or self.config.quota_bytes
            if st.total_bytes > limit:
                self.engine.remove(ih)
                self._put(replace(e, error=f"content {ih[:12]}… is {st.total_bytes} bytes, over the {limit}-byte limit"))
                return
            self._put(e := replace(e, size_bytes=st.total_bytes, name=st.name))
        if self._meta(ih) is None and (meta := self.engine.metadata(ih)) is not None:
            atomic_write_bytes(self.home / "meta" / f"{ih}.torrent", meta)
        # resume records every tick: a kill -9 loses at most the last second or two of pieces
        if (resume := self.engine.resume_data(ih)) is not None:
            atomic_write_bytes(self.home / "resume" / f"{ih}.resume", resume)
        if not st.seeding:
            self.engine.request_resume(ih)
        if st.seeding:
            (self.home / "resume" / f"{ih}.resume").unlink(missing_ok=True)
            self._put(replace(e, done=True, name=st.name, fetched_bytes=st.downloaded_bytes))
            if not e.until_ts:  # fetched for us only: stop serving it on, keep the file
                self.engine.remove(ih)
            return
        if time.monotonic() - self._last_dial.get(ih, 0) > REDIAL_S and not st.peers:
            self._last_dial[ih] = time.monotonic()
            for p in e.peers:
                self.engine.connect(ih, p)

    def _write_status(self) -> None:
        s = self.status()
        doc = {"updated_ts": time.time(), "listen_port": s.listen_port, "used_bytes": s.used_bytes,
               "quota_bytes": s.quota_bytes, "upload_bytes_s_cap": s.upload_bytes_s_cap,
               "download_bytes_s_cap": s.download_bytes_s_cap,
               "transfers": [{"entry": asdict(t.entry), "state": asdict(t.state) if t.state else None} for t in s.transfers]}
        tmp = self.home / ".status.json.tmp"  # no fsync: a lost status file is rewritten next second
        tmp.write_text(json.dumps(doc), encoding="utf-8")
        tmp.replace(status_path(self.home))
