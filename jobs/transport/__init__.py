"""Peer-to-peer artifact transport: content-addressed, verified, resumable, private.

The app's entry points (see docs/transport.md for the design and the NAT story):
- `TransportNode(home, NodeConfig)`: `share` / `publish` / `fetch` / `extend` / `stop` /
  `set_limits` / `status`;
- `ContentRef` / `parse_ref` / `is_ref`: the magnet-link references put on chain and in specs;
- `KeyServer`, `request_key`, `KeyRing.grant`: content keys to authorised addresses only;
- `sealed`: `unseal`, `open_item`, `check_content_key`, `read_header` (fair exchange);
- `crypto.key_commitment`: keccak256 of a content key (`resultKeyHash`).
The engine (libtorrent) sits behind `engine.Engine`, so it can be swapped.
"""

from jobs.transport.crypto import key_commitment, public_key
from jobs.transport.engine import EngineConfig, PeerState, TransferState
from jobs.transport.keys import KeyRefused, KeyRequest, KeyServer, request_key
from jobs.transport.node import NodeConfig, NodeStatus, Shared, TransferStatus, TransportError, TransportNode
from jobs.transport.ref import ContentRef, RefError, is_ref, parse_ref
from jobs.transport.sealed import SealError, check_content_key, open_item, read_header, unseal

__all__ = [
    "ContentRef", "EngineConfig", "KeyRefused", "KeyRequest", "KeyServer", "NodeConfig", "NodeStatus", "PeerState",
    "RefError", "SealError", "Shared", "TransferState", "TransferStatus", "TransportError", "TransportNode",
    "check_content_key", "is_ref", "key_commitment", "open_item", "parse_ref", "public_key", "read_header",
    "request_key", "unseal",
]
