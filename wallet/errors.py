"""Wallet errors, each with a message a user can act on, and revert-data decoding.

Messages never contain private keys, passwords or mnemonics. `decode_revert` turns the raw
bytes a contract reverted with (custom error, `Error(string)` or `Panic(uint256)`) into a
name and arguments using the ABIs of our compiled contracts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


class WalletError(Exception):
    """Base of every error the wallet raises on purpose; str() is a one-line message."""


class KeystoreError(WalletError):
    """A keystore file is missing, corrupt, or cannot be written."""


class WrongPassword(KeystoreError):
    """The password does not decrypt the keystore (nothing was changed)."""


class ChainLocked(WalletError):
    """Another process holds the embedded chain."""


class RpcUnavailable(WalletError):
    """The JSON-RPC endpoint did not answer after the retries."""


class RpcBadReply(WalletError):
    """The JSON-RPC endpoint answered with something that is not a usable reply (too large,
    not JSON, not JSON-RPC, an HTTP error); the message never quotes more than a few bytes."""


class NodeError(WalletError):
    """The node answered the request with a JSON-RPC error object (its code and message)."""

    def __init__(self, message: str, code: int | None = None, node_message: str = ""):
        super().__init__(message)
        self.code = code
        self.node_message = node_message


class WrongChain(WalletError):
    """The endpoint serves another chain than the network expects."""


class InsufficientFunds(WalletError):
    """Not enough ETH for gas and value, or not enough tokens."""


class NotDeployed(WalletError):
    """The market contracts are not known on this network."""


@dataclass(frozen=True)
class Revert:
    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(_fmt(a) for a in self.args)})"


class ContractRevert(WalletError):
    """A contract call or transaction reverted; `revert` holds the decoded reason."""

    def __init__(self, what: str, revert: Revert):
        self.revert = revert
        super().__init__(f"{what} was refused by the contract: {revert}")


class RawRevert(Exception):
    """Internal: the embedded chain's eth_call reverted with `data` (decoded by wallet.chain)."""

    def __init__(self, data: bytes, message: str = ""):
        self.data = data
        super().__init__(message or "execution reverted")


class TransactionFailed(WalletError):
    """A mined transaction has status 0 (it reverted on chain)."""


_PANICS = {0x01: "assert failed", 0x11: "arithmetic overflow", 0x12: "division by zero",
           0x21: "bad enum value", 0x32: "array index out of bounds", 0x41: "out of memory"}


_JOB_STATUS = ("none", "open", "claimed", "submitted", "accepted", "rejected", "released", "refunded")
_RECORD_STATUS = ("none", "submitted", "rejected", "released", "slashed", "key demanded", "key revealed",
                  "demand voided")


def _fmt(a: Any) -> str:
    if isinstance(a, bytes):
        return "0x" + a.hex()
    return str(a)


@functools.lru_cache(maxsize=1)
def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    from eth_utils import keccak

    from wallet.artifacts import all_abis

    table: dict[bytes, tuple[str, list[str]]] = {}
    for abi in all_abis():
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [_abi_type(i) for i in item["inputs"]]
            sig = f"{item['name']}({','.join(types)})"
            table[keccak(text=sig)[:4]] = (item["name"], types)
    table[keccak(text="Error(string)")[:4]] = ("Error", ["string"])
    table[keccak(text="Panic(uint256)")[:4]] = ("Panic", ["uint256"])
    return table


def _abi_type(inp: dict) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in inp["components"]) + ")" + t[5:]
    return t


def decode_revert(data: bytes | str | None) -> Revert:
    """Name and arguments of revert `data`; unknown selectors come back as `unknown`."""
    from eth_abi import decode

    if isinstance(data, str):
        data = bytes.fromhex(data.removeprefix("0x"))
    if not data:
        return Revert("reverted without a reason", ())
    entry = _error_table().get(data[:4])
    if entry is None:
        return Revert("unknown", (data,))
    name, types = entry
    try:
        args = tuple(decode(types, data[4:]))
    except Exception:
        return Revert(name, (data[4:],))
    if name == "Panic":
        return Revert("Panic", (_PANICS.get(args[0], hex(args[0])),))
    if name == "WrongStatus" and len(args) == 2 and 0 <= args[1] < len(_JOB_STATUS):
        return Revert(name, (args[0], _JOB_STATUS[args[1]]))  # JobMarket.Status, by name
    if name == "WrongRecord" and len(args) == 1 and 0 <= args[0] < len(_RECORD_STATUS):
        return Revert(name, (_RECORD_STATUS[args[0]],))  # OrderMarket.RecordStatus, by name
    return Revert(name, args)
