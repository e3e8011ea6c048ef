"""The networks the wallet knows: the embedded `local` chain, a `devnet` JSON-RPC node, and
named public networks that need a user-supplied RPC URL."""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_CHAIN_ID = 27501
"""Chain id of the embedded `local` network (not a public chain's id)."""


@dataclass(frozen=True)
class Network:
    name: str
    chain_id: int | None
    """Expected chain id; None accepts whatever the node serves (devnet)."""
    embedded: bool = False
    default_rpc_url: str | None = None
    test_tokens: bool = True
    """Whether our own NTK (with a faucet) is deployed here; False on mainnet (the real NTK)."""


NETWORKS: dict[str, Network] = {
    "local": Network("local", LOCAL_CHAIN_ID, embedded=True),
    "devnet": Network("devnet", None, default_rpc_url="http://127.0.0.1:8545"),
    "sepolia": Network("sepolia", 11155111),
    "holesky": Network("holesky", 17000),
    "mainnet": Network("mainnet", 1, test_tokens=False),
}


def get_network(name: str) -> Network:
    try:
        return NETWORKS[name]
    except KeyError:
        raise ValueError(f"unknown network {name!r}; one of {', '.join(NETWORKS)}") from None
