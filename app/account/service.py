"""WalletService: the app's wallet, composed from wallet/ for one network and one account.

Opens the chain of the chosen network (the embedded `local` chain, held locked while open,
or a JSON-RPC endpoint), finds the market deployment of that chain, unlocks the account with
the password providers it was given, and on a new local chain deploys the contracts and funds
the user from the faucet. Used by the CLI and (through an executor, one thread) by the GUI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from app.context import AppContext
from app.models import list_demo_models
from wallet.chain import Chain
from wallet.deploy import FAUCET_NTK_WEI, Deployment, deploy_all, find_deployment, load_deployment, save_deployment
from wallet.errors import NotDeployed, WalletError
from wallet.indexer import for_deployment
from wallet.keystore import Keystore, PasswordProvider
from wallet.networks import Network, get_network
from wallet.token import TokenClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Balances:
    address: str
    network: str
    chain_id: int
    eth_wei: int
    ntk_wei: int | None
    """None when no NTK contract is known on this network."""


class WalletService:
    """One network + one account. Not thread-safe: one thread uses it (see module docstring)."""

    def __init__(self, ctx: AppContext, *, network: str | None = None, rpc_url: str | None = None,
                 account: str | None = None, passwords: Sequence[PasswordProvider] = (),
                 keystore: Keystore | None = None, retry_delays_s: Sequence[float] | None = None):
        """retry_delays_s: backoff between JSON-RPC retries (default wallet.chain's, ~4 s in all)."""
        self.ctx = ctx
        ws = ctx.settings.wallet
        self._chosen_here = rpc_url is not None or (network is not None and network != ws.network)
        self.network: Network = get_network(network or ws.network)
        self.rpc_url = rpc_url or ws.url_for(network or ws.network) or self.network.default_rpc_url
        self.keystore = keystore or Keystore(ctx.paths.keystore_dir)
        self.passwords = list(passwords)
        self._account = account
        self._chain: Chain | None = None
        self._embedded = None
        self._signers: dict[str, object] = {}
        self._retry_delays = tuple(retry_delays_s) if retry_delays_s is not None else None

    # --- account ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        if self._account:
            return _checksum(self._account)
        if self.ctx.settings.wallet.account:
            return _checksum(self.ctx.settings.wallet.account)
        keys = self.keystore.accounts()   # KeystoreError when the only keystore files are corrupt
        if len(keys) == 1:
            return keys[0].address
        if not keys:
            raise WalletError("no wallet account yet: create one with `kminer wallet create` or import one")
        raise WalletError("several accounts in the keystore: choose one with --account")

    def use_account(self, address: str) -> None:
        """Work with `address` from now on, whatever the wallet setting says (a new account)."""
        self._account = address

    def keep_keys_of(self, other: "WalletService") -> None:
        """Take over the keys `other` had unlocked (a network switch keeps the account unlocked)."""
        self._signers.update(other._signers)

    def signer(self, address: str | None = None):
        address = _checksum(address or self.address)
        if address not in self._signers:
            if not self.keystore.has(address):
                raise WalletError(f"no key for {address} in the keystore {self.keystore.folder}")
            self._signers[address] = self.keystore.unlock_with(address, self.passwords)
        return self._signers[address]

    def unlock(self, password: str, address: str | None = None) -> str:
        """Open the account's key with `password` and keep it (the GUI's unlock); `WrongPassword`
        leaves the lock state as it was. Returns the address. Blocks for the KDF (~0.1-1 s)."""
        address = _checksum(address or self.address)
        self._signers[address] = self.keystore.unlock(address, password)
        return address

    def lock(self) -> None:
        """Forget every unlocked key (providers stay; the GUI gives none)."""
        self._signers.clear()

    def is_unlocked(self, address: str | None = None) -> bool:
        return _checksum(address or self.address) in self._signers

    # --- chain --------------------------------------------------------------------------

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            problem = None if self._chosen_here else self.ctx.network_problem
            if problem:  # an invalid network setting: never answer from another chain instead
                raise WalletError(problem)
            if self.network.embedded:
                from wallet.embedded import EmbeddedChain  # deferred: loads py-evm and web3 (~1 s)

                self._embedded = EmbeddedChain(self.ctx.paths.chain_dir, genesis_account=self.address)
                self._chain = Chain.over_embedded(self._embedded, lock_dir=self._lock_dir())
            else:
                if not self.rpc_url:
                    raise WalletError(f"network {self.network.name} needs an RPC URL (--rpc-url or the wallet settings)")
                kw = {"retry_delays_s": self._retry_delays} if self._retry_delays is not None else {}
                self._chain = Chain.rpc(self.rpc_url, expected_chain_id=self.network.chain_id, lock_dir=self._lock_dir(), **kw)
        return self._chain

    def _lock_dir(self) -> Path | None:
        return None  # wallet.chain's per-user folder: processes with other app homes share it too

    def deployment(self, *, bootstrap: bool = True) -> Deployment:
        """Our contracts on this chain; on the local chain they are deployed on first use."""
        chain = self.chain
        folder = self.ctx.paths.chain_dir
        try:
            dep = (load_deployment(folder, chain.chain_id) if self.network.embedded
                   else find_deployment(folder, self.network, chain.chain_id))  # the user's file, else a known one
            if chain.read(lambda: chain.w3.eth.get_code(dep.job_market)):
                return dep
            if not self.network.embedded:
                raise NotDeployed(f"the market recorded for chain {chain.chain_id} has no code at {dep.job_market}; "
                                  "the node was reset: deploy again with `kminer market deploy`")
        except NotDeployed:
            if not (self.network.embedded and bootstrap):
                raise
        return self.bootstrap_local()

    def bootstrap_local(self) -> Deployment:
        """Deploy the contracts on the local chain with the user's account and fund it (faucet)."""
        if not self.network.embedded:
            raise WalletError("bootstrap is for the local chain only")
        me = self.signer()
        dep = deploy_all(self.chain, me)

        TokenClient(self.chain, dep.ntk).mint(me, me.address, FAUCET_NTK_WEI)
        list_demo_models(self.chain, me, dep)
        save_deployment(self.ctx.paths.chain_dir, dep)
        log.info("local chain: contracts deployed, %s funded from the faucet", me.address)
        return dep

    def deploy(self) -> Deployment:
        """Deploy our contracts on a test network (devnet, sepolia...) with the current account."""
        if not self.network.test_tokens:
            raise WalletError(f"our test contracts are never deployed on {self.network.name}")
        dep = deploy_all(self.chain, self.signer())
        save_deployment(self.ctx.paths.chain_dir, dep)
        return dep

    def ntk_address(self) -> str | None:
        if not self.network.test_tokens:
            return self.ctx.settings.wallet.ntk_address
        try:
            return self.deployment().ntk
        except NotDeployed:
            return None

    def token(self):
        addr = self.ntk_address()
        if addr is None:
            raise NotDeployed(f"no NTK contract known on {self.network.name}; deploy with `kminer market deploy`")
        return TokenClient(self.chain, addr)

    def market(self):
        from wallet.market import MarketClient  # deferred: loads web3 (~1.5 s)

        return MarketClient(self.chain, self.deployment())

    def balances(self, address: str | None = None) -> Balances:
        address = _checksum(address or self.address)
        ntk = self.ntk_address()

        return Balances(address, self.network.name, self.chain.chain_id, self.chain.balance_wei(address),
                        TokenClient(self.chain, ntk).balance_of(address) if ntk else None)

    def indexer(self):
        chain = self.chain
        return for_deployment(chain, self.ctx.paths.data_dir / f"wallet-index-{chain.chain_id}.sqlite", self.deployment())

    def close(self) -> None:
        if self._embedded is not None:
            self._embedded.close()
            self._embedded = None
        self._chain = None

    def __enter__(self) -> "WalletService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _checksum(address: str) -> str:
    from eth_utils import is_address, to_checksum_address  # deferred: eth-utils takes ~0.1 s to load

    if not is_address(address):
        raise WalletError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)
