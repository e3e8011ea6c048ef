"""One connection to a chain (the embedded one or a JSON-RPC node) and a careful sender.

`Chain.transact` is the only way the wallet sends a transaction: it checks the call would
succeed (so a refusal comes back as the contract's decoded error, before any gas is spent),
prices it with EIP-1559 fees, checks the ETH balance covers gas and value, takes the nonce
under a per-account file lock (two processes sending from one account never reuse a nonce),
signs locally, sends the raw transaction and waits for the receipt.

Threading: a `Chain` is used from one thread at a time (the embedded chain: only the thread
that opened it). Reads retry a JSON-RPC endpoint that does not answer or answers garbage (a
couple of times, backoff), then raise `RpcUnavailable` / `RpcBadReply`; a JSON-RPC error object
becomes `NodeError` with its code and message. Node replies are read bounded and decoded with
limits (wallet.rpc_http). Amounts are wei (ints); times are seconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from filelock import FileLock

from wallet.errors import (
    ContractRevert,
    InsufficientFunds,
    NodeError,
    RawRevert,
    RpcBadReply,
    RpcUnavailable,
    TransactionFailed,
    WalletError,
    WrongChain,
    decode_revert,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000  # 1 gwei, when the node does not suggest one
EMBEDDED_DEFAULT_GAS = 3_000_000
"""Gas limit on the embedded chain when none is given (estimating costs a dozen EVM runs there);
only the gas used is paid."""
RETRY_DELAYS_S = (0.5, 1.0)
"""Pauses between tries of a read the node did not answer: 3 tries of at most RPC_TIMEOUT_S
each (8 s for a reply that trickles), about 14 s in all for a node that never answers."""
RPC_TIMEOUT_S = 4.0
NODE_MESSAGE_CHARS = 200
"""A node's error message is cut to this many characters (a node can send megabytes)."""


@dataclass(frozen=True)
class TxResult:
    """A mined transaction. `receipt` is web3's receipt, for decoding events."""

    tx_hash: str
    block_number: int
    gas_used: int
    fee_wei: int
    receipt: Any = field(compare=False, repr=False)


def _is_connection_error(e: BaseException) -> bool:
    import requests
    from web3.exceptions import ProviderConnectionError

    return isinstance(e, (requests.ConnectionError, requests.Timeout, ProviderConnectionError, ConnectionError))


class Chain:
    """A web3 connection plus what the wallet needs around it (see module docstring)."""

    def __init__(self, w3, *, embedded: bool, label: str, lock_dir: Path | None = None,
                 retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S):
        self.w3 = w3
        self.embedded = embedded
        self.label = label
        self.rpc_url: str | None = None
        """The JSON-RPC endpoint (None for the embedded chain)."""
        self._retry_delays = retry_delays_s
        # default: one folder per OS user, so every process of this user (any app home) shares
        # the locks: the user's runtime folder, private and ownership-checked (common.private_dir)
        if lock_dir:
            self._lock_dir = Path(lock_dir)
            self._lock_dir.mkdir(parents=True, exist_ok=True)
        else:
            from common.private_dir import runtime_dir

            self._lock_dir = runtime_dir("nonce-locks")
        self.chain_id: int = self.read(lambda: self.w3.eth.chain_id)

    # --- construction -------------------------------------------------------------------

    @classmethod
    def rpc(cls, url: str, *, expected_chain_id: int | None = None, timeout_s: float = RPC_TIMEOUT_S,
            lock_dir: Path | None = None, retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S) -> "Chain":
        """Connect to a JSON-RPC endpoint; `WrongChain` if it serves another chain id."""
        from web3 import Web3

        from wallet.rpc_http import BoundedHTTPProvider

        if not url.startswith(("http://", "https://")):
            raise WalletError(f"RPC URL must start with http:// or https://, got {url!r}")
        provider = BoundedHTTPProvider(url, timeout_s=timeout_s)  # we retry (and report) ourselves
        chain = cls(Web3(provider), embedded=False, label=url, lock_dir=lock_dir, retry_delays_s=retry_delays_s)
        chain.rpc_url = url
        if expected_chain_id is not None and chain.chain_id != expected_chain_id:
            raise WrongChain(f"{url} serves chain id {chain.chain_id}, but this network expects {expected_chain_id}; "
                             "check the RPC URL or the network setting")
        return chain

    @classmethod
    def over_embedded(cls, embedded, *, lock_dir: Path | None = None) -> "Chain":
        w3 = embedded.web3()
        return cls(w3, embedded=True, label=f"local chain in {embedded.chain_dir}", lock_dir=lock_dir)

    # --- reads --------------------------------------------------------------------------

    def read(self, fn: Callable[[], T]) -> T:
        """Run a read against the node, retrying with backoff while it cannot be reached or
        answers garbage; a JSON-RPC error object raises `NodeError` at once (reverts are left
        to the callers that decode them)."""
        for attempt in range(len(self._retry_delays) + 1):
            try:
                return fn()
            except Exception as e:
                last = attempt == len(self._retry_delays)
                if isinstance(e, RpcBadReply):
                    if last:
                        raise RpcBadReply(f"{self.label}: {e}") from None
                elif _is_connection_error(e):
                    if last:
                        raise RpcUnavailable(f"cannot reach {self.label} ({_why(e)}); is the node running?") from None
                else:
                    raise _node_error(self.label, e) or e
                time.sleep(self._retry_delays[attempt])
        raise AssertionError("unreachable")

    def call(self, fn, *, sender: str | None = None, what: str = "call") -> Any:
        """Call a contract function (web3 ContractFunction); refusals raise `ContractRevert`."""
        tx = {"from": sender} if sender else {}
        try:
            return self.read(lambda: fn.call(tx))
        except Exception as e:
            revert = _revert_of(e)
            if revert is None:
                raise
            raise _as_wallet_error(what, revert) from None

    def balance_wei(self, address: str) -> int:
        return self.read(lambda: self.w3.eth.get_balance(address))

    def block_number(self) -> int:
        return self.read(lambda: self.w3.eth.block_number)

    def latest_timestamp(self) -> int:
        return self.read(lambda: self.w3.eth.get_block("latest")["timestamp"])

    # --- sending ------------------------------------------------------------------------

    def transact(self, account, fn=None, *, to: str | None = None, value_wei: int = 0, data: bytes = b"",
                 gas: int | None = None, what: str = "transaction", timeout_s: float = 120.0) -> TxResult:
        """Send `fn` (a web3 ContractFunction) or a plain transfer to `to`, signed by `account`.

        `account` is an eth-account LocalAccount. Raises `ContractRevert` (decoded) if the call
        would revert, `InsufficientFunds`, `RpcUnavailable`, or `TransactionFailed`.
        """
        sender = account.address
        if fn is not None:
            built = fn.build_transaction({"from": sender, "value": value_wei, "gas": 1, "nonce": 0, "chainId": self.chain_id,
                                          "maxFeePerGas": 1, "maxPriorityFeePerGas": 1})
            to, data = built.get("to"), bytes.fromhex(str(built["data"]).removeprefix("0x"))
        probe = {"from": sender, "value": value_wei, "data": data}
        if to is not None:
            probe["to"] = to
        self._preflight(probe, what)
        if gas is None:
            gas = EMBEDDED_DEFAULT_GAS if self.embedded else int(self.read(lambda: self.w3.eth.estimate_gas(probe)) * 1.2) + 10_000
        base_fee = self.read(lambda: self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        priority = self._priority_fee()
        max_fee = 2 * base_fee + priority
        need = gas * max_fee + value_wei
        have = self.balance_wei(sender)
        if have < need:
            raise InsufficientFunds(f"{what} needs up to {need} wei of ETH for gas and value; {sender} has {have} wei")
        tx = dict(probe, gas=gas, maxFeePerGas=max_fee, maxPriorityFeePerGas=priority, chainId=self.chain_id, type=2)
        lock = FileLock(str(self._lock_dir / f"nonce-{self.chain_id}-{sender.lower()}.lock"))
        with lock:
            tx_hash = self._send_with_nonce(account, tx, what)
        t0 = time.perf_counter()
        receipt = self.read(lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.05))
        log.debug("%s mined in block %s after %.3f s", what, receipt["blockNumber"], time.perf_counter() - t0)
        if receipt["status"] != 1:
            raise TransactionFailed(f"{what} reverted on chain (tx {tx_hash.hex()})")
        return TxResult(tx_hash="0x" + bytes(tx_hash).hex().removeprefix("0x"), block_number=receipt["blockNumber"],
                        gas_used=receipt["gasUsed"], fee_wei=receipt["gasUsed"] * receipt.get("effectiveGasPrice", max_fee),
                        receipt=receipt)

    def _send_with_nonce(self, account, tx: dict, what: str):
        for attempt in range(3):
            nonce = self.read(lambda: self.w3.eth.get_transaction_count(account.address, "pending"))
            signed = account.sign_transaction(dict(tx, nonce=nonce))
            try:
                return self.read(lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
            except Exception as e:
                msg = str(e).lower()
                if "already known" in msg or "already imported" in msg:
                    return signed.hash  # our own transaction went through before a retry re-sent it
                if ("nonce" in msg and ("low" in msg or "already" in msg)) and attempt < 2:
                    log.info("%s: nonce %d taken, retrying", what, nonce)
                    continue
                if "insufficient funds" in msg:
                    raise InsufficientFunds(f"{what}: not enough ETH for gas and value") from None
                revert = _revert_of(e)
                if revert is not None:
                    raise _as_wallet_error(what, revert) from None
                raise
        raise WalletError(f"{what}: could not get a free nonce")

    def _priority_fee(self) -> int:
        if self.embedded:
            return DEFAULT_PRIORITY_FEE_WEI
        try:
            return int(self.read(lambda: self.w3.eth.max_priority_fee))
        except RpcUnavailable:
            raise
        except Exception:
            return DEFAULT_PRIORITY_FEE_WEI

    def _preflight(self, probe: dict, what: str) -> None:
        try:
            self.read(lambda: self.w3.eth.call(probe))
        except Exception as e:
            if "insufficient funds" in str(e).lower():
                raise InsufficientFunds(f"{what}: {probe['from']} has not enough ETH for gas and value") from None
            revert = _revert_of(e)
            if revert is None:
                raise
            raise _as_wallet_error(what, revert) from None


def _why(e: BaseException) -> str:
    """A connection failure in a few words (requests' messages quote whole URLs and pools)."""
    import requests

    if isinstance(e, requests.Timeout):
        return "no answer in time"
    text = str(e)
    if "Connection refused" in text:
        return "connection refused"
    return type(e).__name__ if len(text) > 80 or not text else text


def _node_error(label: str, e: BaseException) -> WalletError | None:
    """A JSON-RPC error object (web3's Web3RPCError, not a revert) or a malformed reply as
    one-line wallet errors; None for anything else."""
    from web3.exceptions import BadResponseFormat, ContractLogicError, Web3RPCError

    if isinstance(e, ContractLogicError):
        return None
    if isinstance(e, Web3RPCError):
        err = (e.rpc_response or {}).get("error") if isinstance(e.rpc_response, dict) else None
        err = err if isinstance(err, dict) else {}
        code = err.get("code") if isinstance(err.get("code"), int) else None
        msg = str(err.get("message", e.message))[:NODE_MESSAGE_CHARS].replace("\n", " ")
        return NodeError(f"{label} answered with node error {code}: {msg}", code, msg)
    if isinstance(e, BadResponseFormat):
        return RpcBadReply(f"{label}: the node's reply is not a well-formed JSON-RPC response")
    return None


def _revert_of(e: BaseException):
    """The decoded revert inside a web3 or eth-tester exception, else None."""
    from eth_tester.exceptions import TransactionFailed as TesterFailed
    from web3.exceptions import ContractLogicError

    if isinstance(e, RawRevert):
        return decode_revert(e.data) if e.data else _message_revert(str(e))
    if isinstance(e, ContractLogicError):
        data = e.data if isinstance(e.data, (str, bytes)) else None
        if data:
            return decode_revert(data)
        return decode_revert(None) if not e.message else _message_revert(e.message)
    if isinstance(e, TesterFailed):
        arg = e.args[0] if e.args else None
        if isinstance(arg, bytes):
            return decode_revert(arg)
        if isinstance(arg, str) and arg.startswith("0x"):
            return decode_revert(arg)
        return _message_revert(str(arg or "reverted"))
    return None


def _message_revert(message: str):
    """A revert known only by its message; eth-tester's web3 provider puts raw bytes in it."""
    import ast

    from wallet.errors import Revert

    reason = message.removeprefix("execution reverted: ")
    if reason[:2] in ("b'", 'b"'):
        try:
            return decode_revert(ast.literal_eval(reason))
        except (ValueError, SyntaxError):
            pass
    return Revert(reason, ())


def _as_wallet_error(what: str, revert) -> WalletError:
    if revert.name == "ERC20InsufficientBalance":
        _sender, have, need = revert.args
        return InsufficientFunds(f"{what}: not enough tokens (has {have}, needs {need} base units)")
    if revert.name == "ERC20InsufficientAllowance":
        _spender, have, need = revert.args
        return InsufficientFunds(f"{what}: token allowance too small (approved {have}, needs {need} base units)")
    return ContractRevert(what, revert)
