"""One home's transport peer: the P2P node (jobs.transport) and the key service beside it.

`Peer.open(home, host=..., identity_key=...)` starts a `TransportNode` under `<home>/transport`
listening on `host` (DHT and router port mapping off unless asked: the market's references
carry address hints) and a `KeyServer` on the next port, and writes both addresses into
every reference the node makes. `authorize(request)` decides key requests nobody was
granted (the model market: on-chain `has_purchased`); `sample_units` is the k of
`jobs.transport.sampling.sample_budget`, the rule for what a result's buyer may open before
paying. `find(info_hash)` is a transfer's current entry without blocking. Threads: those of TransportNode and KeyServer.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from jobs.transport.engine import EngineConfig
from jobs.transport.keys import KeyRequest, KeyServer
from jobs.transport.node import NodeConfig, TransportNode
from jobs.transport.sampling import SAMPLE_UNITS
from jobs.transport.state import Entry


def free_port(host: str) -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Peer:
    def __init__(self, node: TransportNode, keys: KeyServer, identity_key: bytes):
        self.node, self.keys, self.identity_key = node, keys, identity_key

    @classmethod
    def open(cls, home: Path, *, host: str, identity_key: bytes, port: int = 0, advertise: str | None = None,
             upload_bytes_s: int = 0, download_bytes_s: int = 0, quota_bytes: int = 20 << 30, dht: bool = False,
             port_mapping: bool = False, relays: tuple[str, ...] = (),
             authorize: Callable[[KeyRequest], bool] | None = None, sample_units: int = SAMPLE_UNITS) -> Peer:
        fixed = bool(port)
        port = port or free_port(host)
        adv = advertise or host
        eng = EngineConfig(listen=f"{host}:{port}", upload_bytes_s=upload_bytes_s, download_bytes_s=download_bytes_s,
                           dht=dht, port_mapping=port_mapping)
        node = TransportNode(Path(home) / "transport", NodeConfig(engine=eng, quota_bytes=quota_bytes, relays=relays,
                                                                  identity_key=identity_key))
        try:
            # a fixed port keeps the key service on the next one: references made before a restart
            # still name where to ask for their keys
            kport = port + 1 if fixed else 0
            keys = KeyServer(node.keys, f"{host}:{kport}" if ":" not in host else f"[{host}]:{kport}",
                             authorize=authorize, sample_units=sample_units)
        except OSError:
            node.close()
            raise
        node.config = replace(node.config, advertise=(f"{adv}:{node.engine.listen_port()}",),
                              key_servers=(f"{adv}:{keys.port}",))
        node.engine.map_ports((keys.port,))  # with port mapping on, the router forwards it like the peer port
        return cls(node, keys, identity_key)

    def find(self, info_hash: str) -> Entry | None:
        for t in self.node.status().transfers:
            if t.entry.info_hash == info_hash:
                return t.entry
        return None

    def close(self) -> None:
        self.keys.close()
        self.node.close()
