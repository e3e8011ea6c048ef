"""Failures that pass by themselves (the node down, the artifact store unreachable): the miner
keeps every state and tries again after a backoff instead of failing a job for them."""

from __future__ import annotations

from wallet.errors import RpcUnavailable


class Transient(Exception):
    """A pass stopped by something that comes back by itself; `what` names it ("the artifact store")."""

    def __init__(self, what: str, cause: BaseException):
        super().__init__(f"{what}: {cause}")
        self.what = what
        self.cause = cause


def is_transient(e: BaseException) -> bool:
    """True for an error that means "try again later": the node or the network is away."""
    import requests  # deferred: requests takes ~0.1 s to load

    try:
        from web3.exceptions import ProviderConnectionError  # deferred: loads web3 (~1.2 s)
    except ImportError:  # pragma: no cover
        ProviderConnectionError = ConnectionError  # type: ignore[misc,assignment]
    return isinstance(e, (RpcUnavailable, ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                          ProviderConnectionError))
