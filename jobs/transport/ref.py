"""Content references: what goes on chain or in a spec to name a piece of content and where
to get it.

A reference is a BitTorrent v2 magnet link, so any BitTorrent v2 client can read it:

    magnet:?xt=urn:btmh:1220<info hash>&xt=urn:btih:<v1 hash>&dn=<name>&xl=<bytes>&x.pe=<host:port>...&x.km=<host:port>

- `xt`: the v2 info hash (sha256 of the info dict, which holds the SHA-256 merkle root of
  every 16 KiB block), so the reference pins every byte;
- the second `xt` (optional): the v1 hash the same hybrid torrent answers to. A fetcher that
  knows it accepts connections a server opens *to it* (a hybrid torrent dials with its v1
  hash), which is how a server behind NAT pushes content to a reachable recipient;
- `x.pe`: peer hints (the publisher, then relays that mirror it), tried before the DHT;
- `x.km`: where to ask for the content key (the key service, `jobs.transport.keys`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HOSTPORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$")
MAX_REF_CHARS = 4096
MAX_HINTS = 16


class RefError(ValueError):
    """A reference that cannot be parsed; one-line message."""


@dataclass(frozen=True)
class ContentRef:
    info_hash: str  # 64 hex: BitTorrent v2 info hash
    name: str = ""
    size_bytes: int = 0
    peers: tuple[str, ...] = ()  # "host:port", the publisher first, then relays
    key_servers: tuple[str, ...] = ()  # "host:port" of the key service
    v1: str = ""  # 40 hex: the v1 hash of the same (hybrid) torrent, when known

    def uri(self) -> str:
        q = [f"xt=urn:btmh:1220{self.info_hash}"]
        if self.v1:
            q.append(f"xt=urn:btih:{self.v1}")
        if self.name:
            q.append(f"dn={quote(self.name, safe='')}")
        if self.size_bytes:
            q.append(f"xl={self.size_bytes}")
        q += [f"x.pe={p}" for p in self.peers]
        q += [f"x.km={k}" for k in self.key_servers]
        return "magnet:?" + "&".join(q)

    def with_peers(self, *peers: str) -> ContentRef:
        """A copy with more peer hints (e.g. a relay that now mirrors the content)."""
        merged = tuple(dict.fromkeys((*self.peers, *peers)))[:MAX_HINTS]
        return ContentRef(self.info_hash, self.name, self.size_bytes, merged, self.key_servers, self.v1)

    def __str__(self) -> str:
        return self.uri()


def is_ref(uri: str) -> bool:
    return isinstance(uri, str) and uri.startswith("magnet:?") and "urn:btmh:1220" in uri


def parse_ref(uri: str) -> ContentRef:
    """Parse and check a reference; raises `RefError` with what is wrong."""
    if not isinstance(uri, str) or len(uri) > MAX_REF_CHARS:
        raise RefError("a content reference is a magnet link of at most 4096 characters")
    parts = urlsplit(uri)
    if parts.scheme != "magnet":
        raise RefError(f"not a magnet link: {uri[:40]!r}")
    info_hash, name, size, peers, keys, v1 = None, "", 0, [], [], ""
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        if k == "xt" and v.startswith("urn:btih:"):
            if not _HEX40.match(v[9:]):
                raise RefError("a v1 xt must be urn:btih: followed by a 40-hex info hash")
            v1 = v[9:]
        elif k == "xt":
            if not v.startswith("urn:btmh:1220") or not _HEX64.match(v[13:]):
                raise RefError("xt must be urn:btmh:1220 followed by a 64-hex v2 info hash")
            info_hash = v[13:]
        elif k == "dn":
            name = v[:255]
        elif k == "xl":
            if not v.isdigit():
                raise RefError("xl must be a byte count")
            size = int(v)
        elif k in ("x.pe", "x.km"):
            if not _HOSTPORT.match(v) or not 0 < int(v.rsplit(":", 1)[1]) < 65536:
                raise RefError(f"{k} must be host:port, got {v[:60]!r}")
            (peers if k == "x.pe" else keys).append(v)
    if info_hash is None:
        raise RefError("the magnet link names no v2 info hash (xt=urn:btmh:1220...)")
    if len(peers) > MAX_HINTS or len(keys) > MAX_HINTS:
        raise RefError(f"at most {MAX_HINTS} peer and key-server hints")
    return ContentRef(info_hash, name, size, tuple(peers), tuple(keys), v1)


def split_hostport(hp: str) -> tuple[str, int]:
    host, port = hp.rsplit(":", 1)
    return host.strip("[]"), int(port)
