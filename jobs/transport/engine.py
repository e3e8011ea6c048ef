"""The swappable part of the transport: what a peer-to-peer engine must do for us.

`Engine` is everything `TransportNode` asks of the engine; `lt_engine.LibtorrentEngine`
is the one in use (docs/transport.md says why libtorrent and not iroh). Another engine
implements the same protocol and reports the same frozen records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class EngineConfig:
    """How the engine listens and what it may use; rates in bytes per second, 0 = no cap."""

    listen: str = "0.0.0.0:0"  # host:port; port 0 picks one
    upload_bytes_s: int = 0
    download_bytes_s: int = 0
    dht: bool = True
    dht_bootstrap: tuple[str, ...] = ()  # host:port of DHT nodes (a relay is one)
    port_mapping: bool = True  # UPnP and NAT-PMP on the user's router
    utp: bool = False  # uTP (needed for hole punching); see docs/transport.md for why not by default
    max_connections: int = 200


@dataclass(frozen=True)
class PeerState:
    addr: str  # host:port as the engine sees it
    up_bytes_s: int
    down_bytes_s: int
    progress: float  # how much of the content that peer has, 0..1


@dataclass(frozen=True)
class TransferState:
    """One piece of content in the engine, served or being fetched."""

    info_hash: str
    name: str
    seeding: bool  # have every byte (verified) and serve it
    progress: float  # 0..1 of verified bytes
    total_bytes: int
    up_bytes_s: int
    down_bytes_s: int
    uploaded_bytes: int  # this session
    downloaded_bytes: int
    hash_failures: int  # pieces that failed verification (a tampering or broken peer)
    error: str = ""
    peers: tuple[PeerState, ...] = field(default_factory=tuple)


class EngineError(Exception):
    """The engine refused or failed an operation; one-line message."""


class Engine(Protocol):
    def listen_port(self) -> int: ...

    def make_metadata(self, path: Path) -> tuple[str, bytes]:
        """(info hash, metadata bytes) for a file; the metadata pins every byte."""

    def alt_hash(self, metadata: bytes) -> str:
        """Another hash the same content answers to on the wire ('' if none); see ref.py."""

    def seed(self, path: Path, metadata: bytes) -> str:
        """Serve the file at `path` (already checked to match `metadata`)."""

    def fetch(self, info_hash: str, save_dir: Path, peers: tuple[str, ...], metadata: bytes | None,
              resume: bytes | None = None, alt_hash: str = "") -> None:
        """Start (or resume) fetching into `save_dir`; `metadata` when known skips asking peers,
        `resume` (from `resume_data`) says which pieces are already here and verified,
        `alt_hash` (from the reference) lets a server that dials us deliver."""

    def request_resume(self, info_hash: str) -> None:
        """Ask for a fresh resume record of a fetch in progress (delivered asynchronously)."""

    def resume_data(self, info_hash: str) -> bytes | None:
        """The latest resume record since the last call, if one arrived."""

    def metadata(self, info_hash: str) -> bytes | None:
        """The metadata once known (so a restart can resume without the network)."""

    def connect(self, info_hash: str, peer: str) -> None: ...

    def map_ports(self, ports: tuple[int, ...]) -> None:
        """With port mapping on, ask the router (UPnP / NAT-PMP) to forward these TCP ports too
        (a key service, an order desk) as it does the engine's own; else nothing."""

    def transfers(self) -> list[TransferState]: ...

    def remove(self, info_hash: str) -> None: ...

    def set_rates(self, upload_bytes_s: int, download_bytes_s: int) -> None: ...

    def close(self) -> None: ...
