"""The transport's engine on libtorrent 2.1: BitTorrent v2 (SHA-256 merkle trees per 16 KiB
block), DHT, UPnP/NAT-PMP, rate limits.

What libtorrent gives us and we rely on: every block is checked against the v2 merkle tree
before it is written as valid; a peer that sends bad data is identified block by block
and banned (its pieces are fetched again from another peer); a partial file left by a
killed process is rehashed when the content is added again and only missing pieces are
fetched. Thread-safe: libtorrent runs its own network and disk threads; this class guards
its small bookkeeping with a lock and drains alerts on a daemon thread.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import libtorrent as lt

from jobs.transport.engine import EngineConfig, EngineError, PeerState, TransferState
from jobs.transport.ref import split_hostport

log = logging.getLogger(__name__)

_ALERTS = (lt.alert.category_t.error_notification | lt.alert.category_t.status_notification
           | lt.alert.category_t.storage_notification | lt.alert.category_t.peer_notification)


def _v2_hash(ti_or_h) -> str:
    return str(ti_or_h.info_hashes().v2)


class LibtorrentEngine:
    """See the module docstring; implements `jobs.transport.engine.Engine`."""

    def __init__(self, config: EngineConfig = EngineConfig()):
        self.config = config
        settings = {
            "listen_interfaces": config.listen,
            "enable_dht": config.dht,
            "dht_bootstrap_nodes": ",".join(config.dht_bootstrap),
            "enable_lsd": False,  # would announce what we hold to the whole LAN
            "enable_upnp": config.port_mapping,
            "enable_natpmp": config.port_mapping,
            "enable_outgoing_utp": config.utp,
            "enable_incoming_utp": config.utp,
            "upload_rate_limit": config.upload_bytes_s,
            "download_rate_limit": config.download_bytes_s,
            "connections_limit": config.max_connections,
            "allow_multiple_connections_per_ip": True,
            # our peers are a few hints that may be briefly down (a restarting miner): retry
            # them soon and long, instead of libtorrent's 60 s x failures and give-up after 3
            "min_reconnect_time": 2,
            "max_failcount": 1000,  # peers behind one NAT, a relay and its users
            "alert_mask": _ALERTS,
            "user_agent": "knowledge-miner",
            "peer_fingerprint": "-KM0001-",
            "auto_manage_startup": 0,
            "active_downloads": -1,
            "active_seeds": -1,
            "active_limit": -1,
        }
        try:
            self._ses = lt.session(settings)
        except Exception as e:
            raise EngineError(f"cannot start the transport on {config.listen}: {e}") from None
        # rate caps apply to every peer, LAN ones too (libtorrent exempts the LAN by default)
        everyone = lt.ip_filter()
        glob = 1 << self._ses.global_peer_class_id
        everyone.add_rule("0.0.0.0", "255.255.255.255", glob)
        everyone.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", glob)
        self._ses.set_peer_class_filter(everyone)
        self._lock = threading.Lock()
        self._handles: dict[str, lt.torrent_handle] = {}
        self._failures: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._resume: dict[str, bytes] = {}
        self._closed = threading.Event()
        self._alerts = threading.Thread(target=self._drain_alerts, name="lt-alerts", daemon=True)
        self._alerts.start()

    # ---- content --------------------------------------------------------------------------
    def listen_port(self) -> int:
        return self._ses.listen_port()

    def make_metadata(self, path: Path) -> tuple[str, bytes]:
        path = Path(path)
        # hybrid v1+v2: the info dict then carries every piece hash, so a fetch verifies (and
        # records for resume) each piece as it lands instead of waiting for v2 hash layers
        ct = lt.create_torrent(lt.list_files(str(path)), 0)
        ct.set_creator("knowledge-miner")
        lt.set_piece_hashes(ct, str(path.parent))
        meta = lt.bencode(ct.generate())
        return _v2_hash(lt.torrent_info(meta)), meta

    def alt_hash(self, metadata: bytes) -> str:
        v1 = lt.torrent_info(metadata).info_hashes().v1
        return "" if v1.is_all_zeros() else str(v1)

    def seed(self, path: Path, metadata: bytes) -> str:
        ti = lt.torrent_info(metadata)
        ih = _v2_hash(ti)
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = str(Path(path).parent)
        atp.flags = lt.torrent_flags.seed_mode  # hashed lazily as peers ask, so a changed file is caught
        self._add(ih, atp)
        return ih

    def fetch(self, info_hash: str, save_dir: Path, peers: tuple[str, ...], metadata: bytes | None,
              resume: bytes | None = None, alt_hash: str = "") -> None:
        atp = lt.add_torrent_params()
        if resume is not None:
            try:
                atp = lt.read_resume_data(resume)
            except Exception:
                log.warning("content %s…: resume data unreadable; checking the partial file instead", info_hash[:12])
                atp = lt.add_torrent_params()
        if resume is not None and atp.ti is not None and _v2_hash(atp.ti) == info_hash:
            pass  # the resume data carries the metadata, merkle trees and verified pieces
        elif metadata is not None:
            atp.ti = lt.torrent_info(metadata)
            if _v2_hash(atp.ti) != info_hash:
                raise EngineError("stored metadata does not match the content's hash")
        elif alt_hash:  # both hashes: a server dialing us with the v1 one is recognised too
            atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(alt_hash)), lt.sha256_hash(bytes.fromhex(info_hash)))
        else:
            atp.info_hashes = lt.info_hash_t(lt.sha256_hash(bytes.fromhex(info_hash)))
        atp.save_path = str(save_dir)
        h = self._add(info_hash, atp)
        for p in peers:
            self._connect(h, p)

    def metadata(self, info_hash: str) -> bytes | None:
        h = self._handle(info_hash)
        if h is None or not h.status().has_metadata:
            return None
        atp = lt.add_torrent_params()
        atp.ti = h.torrent_file()
        return lt.bencode(lt.write_torrent_file(atp, lt.write_flags.allow_missing_piece_layer))

    def request_resume(self, info_hash: str) -> None:
        """Ask for fresh resume data (arrives on the alert thread; read with `resume_data`)."""
        h = self._handle(info_hash)
        if h is not None:
            h.save_resume_data(lt.save_resume_flags_t.save_info_dict)

    def resume_data(self, info_hash: str) -> bytes | None:
        with self._lock:
            return self._resume.pop(info_hash, None)

    def map_ports(self, ports: tuple[int, ...]) -> None:
        if not self.config.port_mapping:
            return
        for port in ports:
            try:
                self._ses.add_port_mapping(lt.portmap_protocol.tcp, int(port), int(port))
            except Exception as e:  # no router to ask is not an error: the port just stays closed
                log.info("port %s not mapped: %s", port, e)

    def connect(self, info_hash: str, peer: str) -> None:
        h = self._handle(info_hash)
        if h is not None:
            self._connect(h, peer)

    def _connect(self, h, peer: str) -> None:
        try:
            h.connect_peer(split_hostport(peer))
        except Exception as e:  # a bad hint is skipped, the others still work
            log.info("peer hint %s skipped: %s", peer, e)

    def _add(self, info_hash: str, atp) -> lt.torrent_handle:
        with self._lock:
            if info_hash in self._handles:
                return self._handles[info_hash]
            try:
                h = self._ses.add_torrent(atp)
            except Exception as e:
                raise EngineError(f"cannot add content {info_hash[:12]}…: {e}") from None
            self._handles[info_hash] = h
            self._failures.setdefault(info_hash, 0)
            return h

    def _handle(self, info_hash: str):
        with self._lock:
            return self._handles.get(info_hash)

    def remove(self, info_hash: str) -> None:
        with self._lock:
            h = self._handles.pop(info_hash, None)
            self._failures.pop(info_hash, None)
            self._errors.pop(info_hash, None)
        if h is not None:
            self._ses.remove_torrent(h)

    # ---- state ----------------------------------------------------------------------------
    def transfers(self) -> list[TransferState]:
        with self._lock:
            items = list(self._handles.items())
            failures, errors = dict(self._failures), dict(self._errors)
        out = []
        for ih, h in items:
            s = h.status()
            peers = tuple(PeerState(f"{p.ip[0]}:{p.ip[1]}", p.up_speed, p.down_speed, p.progress)
                          for p in h.get_peer_info())
            total = s.total_wanted if s.has_metadata else 0
            out.append(TransferState(
                info_hash=ih, name=s.name, seeding=bool(s.is_seeding),
                progress=(s.total_wanted_done / total) if total else 0.0, total_bytes=total,
                up_bytes_s=s.upload_rate, down_bytes_s=s.download_rate,
                uploaded_bytes=s.total_payload_upload, downloaded_bytes=s.total_payload_download,
                hash_failures=failures.get(ih, 0), error=errors.get(ih, "") or (s.errc.message() if s.errc.value() else ""),
                peers=peers))
        return out

    def set_rates(self, upload_bytes_s: int, download_bytes_s: int) -> None:
        self._ses.apply_settings({"upload_rate_limit": upload_bytes_s, "download_rate_limit": download_bytes_s})

    def close(self) -> None:
        self._closed.set()
        self._alerts.join(timeout=2)
        with self._lock:
            self._handles.clear()
        self._ses.pause()
        del self._ses

    def _drain_alerts(self) -> None:
        while not self._closed.is_set():
            if self._ses.wait_for_alert(200) is None:
                continue
            for a in self._ses.pop_alerts():
                if isinstance(a, lt.save_resume_data_alert):
                    blob = lt.bencode(lt.write_resume_data(a.params))
                    with self._lock:
                        self._resume[_v2_hash(a.handle)] = blob
                elif isinstance(a, lt.hash_failed_alert):
                    ih = _v2_hash(a.handle)
                    with self._lock:
                        self._failures[ih] = self._failures.get(ih, 0) + 1
                    log.warning("content %s…: piece %s failed verification; fetching it again", ih[:12], a.piece_index)
                elif isinstance(a, (lt.file_error_alert, lt.torrent_error_alert)):
                    ih = _v2_hash(a.handle)
                    with self._lock:
                        self._errors[ih] = a.message()
                    log.warning("content %s…: %s", ih[:12], a.message())
                elif isinstance(a, lt.peer_ban_alert):
                    log.warning("banned peer %s: it sent data that failed verification", a.endpoint)
