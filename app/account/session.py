"""What the Wallet view needs, without Qt: input checks, exact amounts, send quotes with fee,
lock state, network switching; history rows with filters and CSV export (app.account.history),
exact amounts (app.amounts), re-exported here.

`WalletSession` wraps one `WalletService` at a time (one network, one account).
Threading: every `WalletSession` method that touches the chain or the keystore blocks and
must run on ONE thread, the GUI's "chain" runner (the embedded chain's SQLite refuses any
other thread). The free functions (`check_address`, `check_amount`, `format_amount`,
`filter_rows`, `rows_to_csv`, `export_csv`) are pure and safe anywhere.
Amounts are integers in base units (wei; NTK has 18 decimals); text only for display.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.account.history import (
    CSV_COLUMNS, HistoryFilter, HistoryRow, export_csv, filter_rows, rows_to_csv, to_rows,
)
from app.account.mining_account import local_mining_account
from app.account import mining_key as mk
from app.account.sent_log import SentLog
from app.account.service import WalletService
from app.amounts import FieldError, check_address, check_amount, format_amount
from app.context import AppContext
from wallet.deploy import load_deployment
from wallet.errors import (
    KeystoreError, NotDeployed, RpcUnavailable, WalletError, WrongPassword,
)
from wallet.keystore import KeyringPasswords, Keystore
from wallet.networks import NETWORKS, Network, get_network
from wallet.token import TokenClient

log = logging.getLogger(__name__)

ETH_TRANSFER_GAS = 21_000
GUI_RETRY_DELAYS_S = (0.25, 0.75)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

__all__ = [
    "CSV_COLUMNS",
    "FieldError",
    "HistoryFilter",
    "HistoryRow",
    "KeystoreError",
    "Locked",
    "NetworkChoice",
    "RpcUnavailable",
    "SendQuote",
    "SendResult",
    "WalletError",
    "WalletSession",
    "WalletSnapshot",
    "check_address",
    "check_amount",
    "export_csv",
    "filter_rows",
    "format_amount",
    "network_choices",
    "rows_to_csv",
    "to_rows",
]


class Locked(WalletError):
    """The keystore is locked and no password was given."""


@dataclass(frozen=True)
class NetworkChoice:
    name: str
    chain_id: int | None
    embedded: bool
    rpc_url: str | None
    """The endpoint the app would use (from the settings or the network's default); None for local."""
    has_market: bool = True
    """Whether a market is known there (app.market_networks): without one there are no jobs."""

    @property
    def label(self) -> str:
        cid = f"chain id {self.chain_id}" if self.chain_id is not None else "chain id from the node"
        where = "embedded in the app" if self.embedded else (self.rpc_url or "no RPC URL set")
        return f"{self.name} · {cid} · {where}"


def network_choices(ctx: AppContext) -> list[NetworkChoice]:
    from app.market_networks import market_networks

    ws = ctx.settings.wallet
    markets = {r.name: r.has_market for r in market_networks(ctx.paths.chain_dir)}
    out = []
    for n in NETWORKS.values():
        url = None if n.embedded else (ws.url_for(n.name) or n.default_rpc_url)
        out.append(NetworkChoice(n.name, n.chain_id, n.embedded, url, markets.get(n.name, False)))
    return out


# --- snapshots, quotes, history -----------------------------------------------------------

@dataclass(frozen=True)
class WalletSnapshot:
    address: str
    network: str
    chain_id: int
    embedded: bool
    rpc_url: str | None
    block: int
    eth_wei: int
    ntk_wei: int | None
    ntk_note: str | None
    """Why the NTK balance is unknown (no contract on this network...), else None."""
    unlocked: bool
    keyring: bool
    """Whether an OS keyring can hold the password."""
    mining_address: str | None = None
    """On the local test chain: the account the app's miner signs with (app.market_session), whose
    NTK is what this wallet earned by mining; None elsewhere (the wallet's address mines) or
    before the first unlock."""
    mining_ntk_wei: int | None = None


@dataclass(frozen=True)
class SendQuote:
    asset: Literal["NTK", "ETH"]
    to: str
    amount_wei: int
    gas: int
    """Estimated gas used."""
    gas_price_wei: int
    """Expected price per gas now: base fee + priority fee."""
    max_fee_wei: int
    """The most the transaction can cost in fees (gas limit x max fee per gas)."""

    @property
    def fee_wei(self) -> int:
        return self.gas * self.gas_price_wei


@dataclass(frozen=True)
class SendResult:
    tx_hash: str
    block: int
    fee_wei: int


# --- the session (chain thread only) ----------------------------------------------------------

class WalletSession:
    """The GUI's wallet: one WalletService at a time. Chain-thread only (module docstring)."""

    def __init__(self, ctx: AppContext, *, keystore: Keystore | None = None, keyring: KeyringPasswords | None = None,
                 retry_delays_s: Sequence[float] | None = GUI_RETRY_DELAYS_S):
        """retry_delays_s: JSON-RPC backoff; short by default so a node that is down is reported
        in about a second and the chain runner is free again."""
        self.ctx = ctx
        self.keystore = keystore or Keystore(ctx.paths.keystore_dir)
        self.keyring = keyring or KeyringPasswords()
        self.retry_delays_s = retry_delays_s
        self._svc: WalletService | None = None
        self._auto_unlock = True
        self._mining_addresses: dict[str, str] = {}
        self.sent_log = SentLog(ctx.paths.data_dir / "wallet-sent.sqlite")

    @property
    def service(self) -> WalletService:
        if self._svc is None:
            self._svc = self._open(self.ctx.settings.wallet.network, None)
        return self._svc

    @property
    def network(self) -> Network:
        return self.service.network

    def _open(self, network: str, rpc_url: str | None) -> WalletService:
        return WalletService(self.ctx, network=network, rpc_url=rpc_url, keystore=self.keystore,
                             retry_delays_s=self.retry_delays_s)

    def switch_network(self, name: str, rpc_url: str | None = None) -> WalletSnapshot:
        """Close the current network, open `name` (saved as the wallet setting), return its snapshot.

        The unlocked key is kept across the switch (same account). RpcUnavailable / WrongChain
        propagate: the network stays selected, `snapshot()` retries."""
        get_network(name)  # ValueError on an unknown name, before anything changes
        old = self._svc
        if old is not None:
            old.close()
        ws = self.ctx.settings.wallet
        if ws.network != name or (rpc_url and rpc_url != ws.rpc_url):
            ws.use_network(name, rpc_url)
            self.ctx.save_settings()
        self._svc = self._open(name, rpc_url)
        if old is not None:
            self._svc.keep_keys_of(old)
        return self.snapshot()

    # --- reads --------------------------------------------------------------------------

    def snapshot(self) -> WalletSnapshot:
        """Address, balances and lock state now. Raises RpcUnavailable when the node is down."""
        svc = self.service
        address = svc.address
        if not svc.network.embedded and not svc.rpc_url:
            raise WalletError(f"{svc.network.name} needs an RPC URL: set it in Settings → Wallet → RPC URL, "
                              "then Retry.")
        if self._auto_unlock:  # once: the keyring (when opted in) unlocks at start, never after a Lock
            self._auto_unlock = False
            if not svc.is_unlocked():
                self.unlock_from_keyring()
        chain = svc.chain
        note = None
        try:
            ntk_addr = self._ntk_address()
            if ntk_addr is None:
                note = "No NTK contract on this network yet (deploy with `kminer market deploy`)."
        except Locked:
            ntk_addr = None
            note = "Unlock the wallet to set up NTK on the local chain."

        token = TokenClient(chain, ntk_addr) if ntk_addr else None
        ntk = token.balance_of(address) if token else None
        mining = self._local_mining_address() if svc.network.embedded else None
        return WalletSnapshot(address, svc.network.name, chain.chain_id, svc.network.embedded,
                              None if svc.network.embedded else svc.rpc_url, chain.block_number(),
                              chain.balance_wei(address), ntk, note, svc.is_unlocked(), self.keyring.available(),
                              mining, token.balance_of(mining) if token and mining else None)

    def _local_mining_address(self) -> str | None:
        """The local mining account of this wallet (derived from the key, so known once the
        wallet was unlocked in this run; remembered per address)."""
        svc = self.service
        known = self._mining_addresses.get(svc.address)
        if known is None and svc.is_unlocked():
            known = self._mining_addresses[svc.address] = local_mining_account(svc.signer()).address
        return known

    def _ntk_address(self) -> str | None:
        """NTK here, None if none is known; Locked when the local chain must first be set up
        (deploying needs the key: never asked for silently)."""
        svc = self.service
        if svc.network.embedded and not svc.is_unlocked():
            try:
                dep = load_deployment(self.ctx.paths.chain_dir, svc.chain.chain_id)
                if svc.chain.read(lambda: svc.chain.w3.eth.get_code(dep.ntk)):
                    return dep.ntk
            except NotDeployed:
                pass
            raise Locked("the local chain needs the unlocked key to deploy NTK")
        return svc.ntk_address()

    def history(self, limit: int = 1000) -> list[HistoryRow]:
        """Token transfers and market events of the account, newest first (the indexer synced first)."""
        svc = self.service
        me = svc.address
        if svc.network.embedded and not svc.is_unlocked():
            self._ntk_address()  # raises Locked when the local chain has no contracts yet
        idx = svc.indexer()
        try:
            idx.sync()
            events = idx.history(me, limit=limit)
        finally:
            idx.close()
        dep = svc.deployment(bootstrap=False)
        labels = {dep.job_market: "Job market", dep.model_market: "Model market", dep.ntk: "NTK contract",
                  ZERO_ADDRESS: "Minted (faucet)"}
        mining = self._mining_addresses.get(me)
        if mining:
            labels[mining] = "Your mining account"
        try:
            for r in mk.mining_keys(svc).records():
                labels[r.address] = "Your mining key" if r.state == "active" else f"Your {r.state} mining key"
        except WalletError:
            pass  # a corrupt records file is reported where the mining key is shown
        rows = to_rows(events, me, labels)
        eth = [HistoryRow(e.block, e.timestamp, e.tx_hash, "transfer", "EthSent", "out", e.to_addr,
                          labels.get(e.to_addr, e.to_addr), e.value_wei, None, asset="ETH")
               for e in self.sent_log.rows(svc.chain.chain_id, me, limit)]
        return sorted(rows + eth, key=lambda r: r.block, reverse=True)[:limit]  # stable within a block

    def record_eth_sent(self, result, to: str, value_wei: int, what: str = "sent") -> None:
        """Remember a plain ETH transfer the app signed from this wallet (a wallet.chain.TxResult
        or a SendResult)."""
        svc = self.service
        block = result.block if isinstance(result, SendResult) else result.block_number
        try:
            self.sent_log.record(chain_id=svc.chain.chain_id, tx_hash=result.tx_hash, block=block,
                                 from_addr=svc.address, to_addr=to, value_wei=value_wei, fee_wei=result.fee_wei, what=what)
        except sqlite3.Error as e:  # the ETH moved: a full disk must not turn that into an error
            log.warning("could not record the ETH transfer %s in the history: %s", result.tx_hash, e)

    # --- lock state ---------------------------------------------------------------------

    def unlock(self, password: str, *, remember: bool = False) -> bool:
        """Unlock with `password`; FieldError("password") if wrong (nothing changes).
        remember: also keep it in the OS keyring. Returns whether the keyring holds it now."""
        if not password:
            raise FieldError("password", "Enter the wallet password.")
        svc = self.service
        try:
            address = svc.unlock(password)
        except WrongPassword:
            raise FieldError("password", "Wrong password.") from None
        if remember and self.keyring.set(address, password):
            if not self.ctx.settings.wallet.remember_password:
                self.ctx.settings.wallet.remember_password = True
                self.ctx.save_settings()
            return True
        return False

    def unlock_from_keyring(self) -> bool:
        """Unlock with the password the OS keyring holds (only when the user opted in). True if it did."""
        svc = self.service
        if not self.ctx.settings.wallet.remember_password:
            return False
        pw = self.keyring.get(svc.address)
        if not pw:
            return False
        try:
            svc.unlock(pw)
        except WrongPassword:
            log.warning("the password in the keyring no longer opens the keystore")
            return False
        return True

    def lock(self) -> None:
        self._auto_unlock = False
        self.service.lock()

    def signer(self, password: str | None = None):
        """The unlocked account (eth-account LocalAccount) for other GUI services that sign
        (market purchases...). Locked: `password` opens it for this use only (FieldError("password")
        if wrong); none given: `Locked`, so the view can ask for it."""
        svc = self.service
        if svc.is_unlocked():
            return svc.signer()
        if not password:
            raise Locked("the wallet is locked: enter its password")
        try:
            return svc.keystore.unlock(svc.address, password)
        except WrongPassword:
            raise FieldError("password", "Wrong password.") from None

    # --- the market signer and the mining key ---------------------------------------------

    def market_signer(self) -> mk.MarketSigner:
        """Who signs the miner's market actions now (app.account.mining_key); never asks for a
        password: NoMarketSigner says why none can and what to do."""
        return mk.market_signer(self.service, ask=False, derive_on_local=True)

    def mining_key_status(self) -> mk.MiningKeyStatus:
        return mk.mining_key_status(self.service)

    def mining_key_change(self, action: Literal["create", "rotate", "revoke"], password: str | None = None,
                          *, storage: str | None = None) -> mk.KeyChange:
        """Create, rotate or revoke the mining key. These move ETH and stake with the main wallet:
        locked, `password` opens it for this action only (FieldError("password") if wrong).
        storage: where a new key is kept (default: Settings → Mining key)."""
        storage = storage or self.ctx.settings.mining_key.storage
        svc = self.service
        was_unlocked = svc.is_unlocked()
        if not was_unlocked:
            if not password:
                raise Locked("the wallet is locked: enter its password")
            try:
                svc.keystore.unlock(svc.address, password)
            except WrongPassword:
                raise FieldError("password", "Wrong password.") from None
        saved = svc.passwords
        svc.passwords = [lambda _a: password] if password else []
        try:
            if action == "create":
                return mk.create_mining_key(svc, storage=storage)
            if action == "rotate":
                return mk.rotate_mining_key(svc, storage=storage)
            return mk.revoke_mining_key(svc)
        finally:
            svc.passwords = saved
            if not was_unlocked:
                svc.lock()  # the password opened it for this action only

    # --- sending ------------------------------------------------------------------------

    def quote(self, to_text: str, amount_text: str, asset: Literal["NTK", "ETH"] = "NTK") -> SendQuote:
        """Check a send and price it: FieldError on a bad address or amount or too little to cover
        amount and fee; RpcUnavailable when the node is down."""
        if asset not in ("NTK", "ETH"):
            raise FieldError("asset", f"Unknown asset {asset!r}.")
        to = check_address(to_text)
        amount = check_amount(amount_text)
        svc = self.service
        chain = svc.chain
        me = svc.address
        w3 = chain.w3
        eth = chain.balance_wei(me)
        if asset == "NTK":
            try:
                token = _token(chain, self._ntk_address())
            except (NotDeployed, Locked) as e:
                raise FieldError("asset", f"NTK cannot be sent here: {e}.") from None
            have = token.balance_of(me)
            if amount > have:
                raise FieldError("amount", f"Insufficient funds: you have {format_amount(have)} NTK.")
            probe = {"from": me, "to": token.address, "data": token.contract.encode_abi("transfer", args=[to, amount])}
            value = 0
        else:
            probe = {"from": me, "to": to, "value": amount}
            value = amount
            if amount > eth:
                raise FieldError("amount", f"Insufficient funds: you have {format_amount(eth)} ETH.")
        try:
            gas = int(chain.read(lambda: w3.eth.estimate_gas(probe)))
        except RpcUnavailable:
            raise
        except Exception as e:
            raise FieldError("amount", f"The network refuses this transfer: {e}") from None
        if asset == "ETH":
            limit = max(gas, ETH_TRANSFER_GAS)
        elif chain.embedded:
            limit = 90_000  # TokenClient's fixed limit on the embedded chain
        else:
            limit = int(gas * 1.2) + 10_000
        base = int(chain.read(lambda: w3.eth.get_block("latest").get("baseFeePerGas", 0)))
        prio = chain._priority_fee()
        q = SendQuote(asset, to, amount, gas, base + prio, limit * (2 * base + prio))
        if eth < q.max_fee_wei + value:
            raise FieldError("amount", f"Insufficient funds for the fee: you have {format_amount(eth)} ETH, "
                                       f"this needs up to {format_amount(q.max_fee_wei + value)} ETH.")
        return q

    def send(self, quote: SendQuote, password: str | None = None) -> SendResult:
        """Send what `quote` describes. Locked keystore: `password` opens the key for this
        transaction only (FieldError("password") if wrong; nothing is sent); none given: Locked."""
        svc = self.service
        signer = self.signer(password)
        if quote.asset == "ETH":
            res = svc.chain.transact(signer, to=quote.to, value_wei=quote.amount_wei,
                                     gas=max(quote.gas, ETH_TRANSFER_GAS), what=f"sending {format_amount(quote.amount_wei)} ETH")
            self.record_eth_sent(res, quote.to, quote.amount_wei)
        else:
            res = _token(svc.chain, self._ntk_address()).transfer(signer, quote.to, quote.amount_wei)
        log.info("sent %s %s to %s in block %s", format_amount(quote.amount_wei), quote.asset, quote.to, res.block_number)
        return SendResult(res.tx_hash, res.block_number, res.fee_wei)

    def export_keystore(self, dest: Path) -> Path:
        """Copy the account's keystore file to `dest` (never overwrites)."""
        return self.keystore.export_keystore(self.service.address, Path(dest))

    def close(self) -> None:
        if self._svc is not None:
            self._svc.close()
            self._svc = None


def _token(chain, address: str | None):
    if address is None:
        raise NotDeployed("no NTK contract known on this network")
    return TokenClient(chain, address)

