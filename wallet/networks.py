"""The networks the wallet knows: the embedded `local` chain, a `devnet` JSON-RPC node, and
the public networks (Ethereum, its L2s, Polygon and their test networks).

The public presets are data, `resources/data/networks.json` (chain ids, explorers, a public
RPC hint, how the network charges for L1 data, with sources and a date), read once at
import. A public network needs an RPC URL the user chooses; `public_rpc` is only a hint.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

LOCAL_CHAIN_ID = 27501
"""Chain id of the embedded `local` network (not a public chain's id)."""
L1_FEE_MODELS = (None, "op-stack", "in-gas")


@dataclass(frozen=True)
class Network:
    name: str
    chain_id: int | None
    """Expected chain id; None accepts whatever the node serves (devnet)."""
    embedded: bool = False
    default_rpc_url: str | None = None
    test_tokens: bool = True
    """Whether our own NTK (with a faucet) may be deployed here; False on main networks."""
    label: str = ""
    layer: str = "L1"
    l1_fee: str | None = None
    """How L1 data is charged: 'op-stack' (a separate fee), 'in-gas' (Arbitrum), or None."""
    native_symbol: str = "ETH"
    explorer: str | None = None
    public_rpc: str | None = None
    """A free public endpoint to suggest (rate-limited); never used without the user's choice."""
    ntk_address: str | None = None
    """The official NTK here (Ethereum mainnet only); elsewhere the user confirms a token."""
    typical_base_fee_gwei: float | None = None
    """A dated reference for estimates made offline; a connected app reads the chain."""

    @property
    def testnet(self) -> bool:
        return self.test_tokens

    @property
    def op_stack(self) -> bool:
        return self.l1_fee == "op-stack"

    def tx_url(self, tx_hash: str) -> str | None:
        return f"{self.explorer}/tx/{tx_hash}" if self.explorer else None

    def address_url(self, address: str) -> str | None:
        return f"{self.explorer}/address/{address}" if self.explorer else None


def _resources_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)  # a PyInstaller bundle keeps resources/ beside its modules
    return Path(frozen) / "resources" if frozen else Path(__file__).resolve().parent.parent / "resources"


NETWORKS_FILE = _resources_dir() / "data" / "networks.json"


def parse_networks(doc: object, *, where: str = "networks data") -> dict[str, Network]:
    """Public network presets from a `networks` document; ValueError (one line) when malformed."""
    if not isinstance(doc, dict) or doc.get("kind") != "networks" or not isinstance(doc.get("networks"), dict):
        raise ValueError(f"{where}: expected an object of kind 'networks' with a 'networks' object")
    out: dict[str, Network] = {}
    for name, n in doc["networks"].items():
        try:
            cid = n["chain_id"]
            if not isinstance(cid, int) or cid <= 0 or n.get("l1_fee") not in L1_FEE_MODELS:
                raise ValueError("bad chain_id or l1_fee")
            fee = n.get("typical_base_fee_gwei")
            out[name] = Network(name, cid, test_tokens=bool(n["testnet"]), label=str(n["label"]), layer=str(n["layer"]),
                                l1_fee=n.get("l1_fee"), native_symbol=str(n["native_symbol"]),
                                explorer=n.get("explorer"), public_rpc=n.get("public_rpc"),
                                ntk_address=n.get("ntk_address"),
                                typical_base_fee_gwei=float(fee) if fee is not None else None)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: network {name!r} is malformed ({e})") from None
    return out


def _load_presets() -> dict[str, Network]:
    return parse_networks(json.loads(NETWORKS_FILE.read_text(encoding="utf-8")), where=str(NETWORKS_FILE))


NETWORKS: dict[str, Network] = {
    "local": Network("local", LOCAL_CHAIN_ID, embedded=True, label="Local chain (embedded in the app)"),
    "devnet": Network("devnet", None, default_rpc_url="http://127.0.0.1:8545", label="Devnet (your own node)"),
    **_load_presets(),
}


def get_network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; one of {', '.join(NETWORKS)}") from None


def network_for_chain(chain_id: int) -> Network | None:
    """The preset serving `chain_id` (local included), or None."""
    return next((n for n in NETWORKS.values() if n.chain_id == chain_id), None)
