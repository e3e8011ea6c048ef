"""The market signer, and the mining key's use cases (create, fund, rotate, revoke, show).

`market_signer(svc)` says who signs the miner's market actions and who is paid:
- an active mining key (wallet.mining_keys): it signs; the main wallet's address (the
  payout) is paid and deposits the stake, so the main wallet can stay locked after a reboot;
- else the main wallet, when it can be opened (unlocked, or a password from the CLI's
  providers): it signs and is paid (in the desktop app on the embedded `local` chain through
  its derived mining account, see app.account.mining_account);
- else `NoMarketSigner`, whose `reason` and `fix` say what to do in one line each.

The key holds only what its work needs: gas ETH, sent by the main wallet when the key is made
(`DEFAULT_GAS_WEI`); the stake sits in the OrderMarket for (mining key, payout), deposited and
withdrawn by the payout address. Rotating or revoking sweeps the ETH left on the old key back
to the payout and, with the main wallet open, starts withdrawing the old key's stake (it
unlocks after the market's unbonding delay; `withdraw_unlocked_stakes` collects it later).

Threading: everything here blocks on the chain or the keyring: the GUI runs it on its chain runner.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Literal

from app.account.mining_account import local_mining_account
from app.account.sent_log import SentLog
from app.account.service import WalletService
from app.amounts import eth_text, ntk_text
from wallet.errors import WalletError
from wallet.mining_keys import MiningKeyError, MiningKeyRecord, MiningKeys, MiningKeyUnavailable

log = logging.getLogger(__name__)

DEFAULT_GAS_WEI = {"embedded": 10 * 10**18, "rpc": 5 * 10**15}
"""Gas ETH the main wallet gives a new mining key: 10 test ETH on the local chain, 0.005 ETH
elsewhere (about 100 redemptions at 1 gwei; FACTS: 100k gas = 0.0001 ETH at 1 gwei)."""
LOW_GAS_WEI = {"embedded": 10**18, "rpc": 5 * 10**14}
"""Below this the rig's status says the key needs ETH for fees."""
SWEEP_GAS = 21_000

FILE_RISK = ("Kept in a file (0600) in the app's data folder: anyone who can read your files can sign market "
             "actions with it. It holds only gas ETH; your earnings go to your main address.")
KEYRING_NOTE = "Kept in the OS keyring: it opens after a reboot once you are logged in."

SignerSource = Literal["mining-key", "wallet", "local-mining-account"]


class NoMarketSigner(WalletError):
    """No key can sign market actions now. `reason` and `fix`: one line each."""

    def __init__(self, reason: str, fix: str):
        super().__init__(f"{reason}: {fix}")
        self.reason, self.fix = reason, fix


@dataclass(frozen=True)
class MarketSigner:
    """Who signs claims and results (`account`, an eth-account LocalAccount) and who is paid."""

    account: Any = field(repr=False)
    payout: str
    source: SignerSource

    @property
    def address(self) -> str:
        return self.account.address


def mining_keys(svc: WalletService) -> MiningKeys:
    return MiningKeys(svc.ctx.paths.data_dir)


def market_signer(svc: WalletService, keys: MiningKeys | None = None, *, ask: bool = True,
                  derive_on_local: bool = False) -> MarketSigner:
    """See the module docstring. ask: let the main wallet's password providers be asked (the CLI);
    False: only an already unlocked main wallet signs (the GUI never asks in the background).
    derive_on_local: on the embedded chain the main wallet mines through its derived mining
    account (the desktop app, whose user is also the buyer); the CLI names its account instead."""
    keys = keys or mining_keys(svc)
    try:
        rec = keys.active()
    except MiningKeyError as e:
        raise NoMarketSigner(str(e), "move the file away and create a new mining key") from None
    if rec is not None:
        try:
            return MarketSigner(keys.open(rec), rec.payout, "mining-key")
        except MiningKeyUnavailable as e:
            fix = ("unlock the OS keyring (log in to the desktop), or rotate the mining key to a file"
                   if rec.storage == "keyring" else "rotate the mining key (a new one is made)")
            raise NoMarketSigner(str(e), fix) from None
    if not (svc.is_unlocked() or (ask and svc.passwords)):
        raise NoMarketSigner("the wallet is locked and there is no mining key",
                             "create a mining key so the rig mines while the wallet stays locked, or unlock the wallet")
    try:
        me = svc.signer()
    except WalletError as e:
        raise NoMarketSigner(str(e), "create a mining key, or give the wallet password") from None
    if svc.network.embedded and derive_on_local:
        return MarketSigner(local_mining_account(me), me.address, "local-mining-account")
    return MarketSigner(me, me.address, "wallet")


# --- status ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyStake:
    address: str
    active_wei: int
    withdrawing_wei: int
    unlock_at: int


@dataclass(frozen=True)
class MiningKeyStatus:
    """What the Wallet page and `kminer wallet mining-key show` say about the mining key."""

    active: MiningKeyRecord | None
    others: tuple[MiningKeyRecord, ...]
    """Retired and revoked keys, newest first."""
    storage_note: str
    eth_wei: int | None
    """ETH on the active key on this network; None when the node did not answer."""
    low_gas: bool
    stakes: tuple[KeyStake, ...] = ()
    """Stakes of any key here paying the payout (OrderMarket), where one is deployed."""
    offline: str | None = None

    def lines(self) -> list[str]:
        if self.active is None:
            return ["no mining key: the rig signs with the main wallet, which must stay unlocked"]
        a = self.active
        out = [f"mining key {a.address} ({a.storage}), pays {a.payout}", self.storage_note]
        if self.eth_wei is not None:
            out.append(f"gas: {eth_text(self.eth_wei)}" + (" (low: fund it)" if self.low_gas else ""))
        elif self.offline:
            out.append(f"balance unknown: {self.offline}")
        for s in self.stakes:
            out.append(f"stake of {s.address}: {ntk_text(s.active_wei)} active, {ntk_text(s.withdrawing_wei)} withdrawing")
        for r in self.others:
            out.append(f"{r.state} key {r.address} ({r.storage})")
        return out


def _kind(svc: WalletService) -> str:
    return "embedded" if svc.network.embedded else "rpc"


def _order_market(svc: WalletService):
    """The OrderMarket client of this network, or None when none is deployed."""
    try:
        dep = svc.deployment(bootstrap=False)
    except WalletError:
        return None
    if not getattr(dep, "order_market", None):
        return None
    from wallet.order_market import OrderMarketClient  # deferred: web3

    return OrderMarketClient(svc.chain, dep.order_market, token_address=dep.ntk)


def mining_key_status(svc: WalletService, keys: MiningKeys | None = None) -> MiningKeyStatus:
    keys = keys or mining_keys(svc)
    records = keys.records()
    active = next((r for r in records if r.state == "active"), None)
    others = tuple(r for r in reversed(records) if r.state != "active")
    if active is None:
        return MiningKeyStatus(None, others, "", None, False)
    note = FILE_RISK if active.storage == "file" else KEYRING_NOTE
    try:
        eth = svc.chain.balance_wei(active.address)
        om = _order_market(svc)
        stakes = []
        if om is not None:
            for r in records:
                if r.payout == active.payout:
                    s = om.stake(r.address, r.payout)
                    if s.active_wei or s.withdrawing_wei:
                        stakes.append(KeyStake(r.address, s.active_wei, s.withdrawing_wei, s.unlock_at))
    except WalletError as e:
        return MiningKeyStatus(active, others, note, None, False, (), str(e))
    return MiningKeyStatus(active, others, note, eth, eth < LOW_GAS_WEI[_kind(svc)], tuple(stakes))


# --- changes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyChange:
    """What a create / rotate / revoke did, and what is left to do (lines for people)."""

    key: MiningKeyRecord | None
    old: MiningKeyRecord | None = None
    done: tuple[str, ...] = ()
    left: tuple[str, ...] = ()


def fund_mining_key(svc: WalletService, address: str, *, gas_wei: int | None = None, stake_wei: int = 0) -> list[str]:
    """Send gas ETH (and deposit stake, where an OrderMarket exists) for mining key `address`
    from the main wallet (it must open). Returns what was done, one line each."""
    me = svc.signer()
    gas = DEFAULT_GAS_WEI[_kind(svc)] if gas_wei is None else gas_wei
    done = []
    if gas > 0:
        res = svc.chain.transact(me, to=address, value_wei=gas, gas=SWEEP_GAS, what="gas for the mining key")
        try:  # the Wallet page's history shows where the ETH went
            SentLog(svc.ctx.paths.data_dir / "wallet-sent.sqlite").record(
                chain_id=svc.chain.chain_id, tx_hash=res.tx_hash, block=res.block_number, from_addr=me.address,
                to_addr=address, value_wei=gas, fee_wei=res.fee_wei, what="gas for the mining key")
        except sqlite3.Error as e:  # the ETH moved: a full disk must not turn that into an error
            log.warning("could not record the gas sent to the mining key: %s", e)
        done.append(f"sent {eth_text(gas)} for gas to the mining key (block {res.block_number})")
    if stake_wei > 0:
        om = _order_market(svc)
        if om is None:
            raise MiningKeyError(f"no order market on {svc.network.name}: no stake to deposit")
        om.deposit_stake(me, address, stake_wei)
        done.append(f"deposited {ntk_text(stake_wei)} of stake for the mining key")
    return done


def create_mining_key(svc: WalletService, *, storage: str = "auto", gas_wei: int | None = None, stake_wei: int = 0,
           keys: MiningKeys | None = None) -> KeyChange:
    """A new mining key paying the wallet's address, funded from the main wallet when it opens."""
    keys = keys or mining_keys(svc)
    rec = keys.create(svc.address, storage=storage)
    done, left = [f"created mining key {rec.address} ({rec.storage}), paying {rec.payout}"], []
    try:
        done += fund_mining_key(svc, rec.address, gas_wei=gas_wei, stake_wei=stake_wei)
    except WalletError as e:
        left.append(f"fund it with gas ETH from the main wallet (not done: {e})")
    return KeyChange(rec, None, tuple(done), tuple(left))


def _retire_old(svc: WalletService, keys: MiningKeys, old: MiningKeyRecord) -> tuple[list[str], list[str]]:
    """Sweep the old key's ETH to the payout and start withdrawing its stake (main wallet)."""
    done, left = [], []
    try:
        acct = keys.open(old)
        chain = svc.chain
        bal = chain.balance_wei(old.address)
        base = chain.read(lambda: chain.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        fee = SWEEP_GAS * (2 * base + chain._priority_fee())
        if bal > fee:
            chain.transact(acct, to=old.payout, value_wei=bal - fee, gas=SWEEP_GAS, what="sweeping the old mining key")
            done.append(f"sent the {eth_text(bal - fee)} left on {old.address} back to {old.payout}")
    except WalletError as e:
        left.append(f"the ETH left on {old.address} was not swept back ({e})")
    om = None
    try:
        om = _order_market(svc)
        stake = om.stake(old.address, old.payout) if om is not None else None
    except WalletError as e:
        stake = None
        left.append(f"its stake could not be read ({e})")
    if stake is not None and stake.active_wei:
        try:
            om.request_unstake(svc.signer(), old.address, stake.active_wei)
            done.append(f"started withdrawing its stake of {ntk_text(stake.active_wei)} (unlocks after "
                        f"{om.unbond_delay_s() // 3600} h; collected by the next show or rotate with the wallet open)")
        except WalletError as e:
            left.append(f"its stake of {ntk_text(stake.active_wei)} stays in the market until the main wallet "
                        f"withdraws it ({e})")
    return done, left


def rotate_mining_key(svc: WalletService, *, storage: str = "auto", gas_wei: int | None = None, stake_wei: int = 0,
           keys: MiningKeys | None = None) -> KeyChange:
    """A new key for new claims; the old one is retired (finish its claimed jobs before rotating:
    a job it claimed and does not deliver costs its stake)."""
    keys = keys or mining_keys(svc)
    new, old = keys.rotate(svc.address, storage=storage)
    done = [f"created mining key {new.address} ({new.storage}); {old.address} is retired"]
    swept, left = _retire_old(svc, keys, old)
    done += swept
    try:
        done += fund_mining_key(svc, new.address, gas_wei=gas_wei, stake_wei=stake_wei)
    except WalletError as e:
        left.append(f"fund the new key with gas ETH from the main wallet (not done: {e})")
    return KeyChange(new, old, tuple(done), tuple(left))


def revoke_mining_key(svc: WalletService, *, keys: MiningKeys | None = None) -> KeyChange:
    """Sweep, start the stake withdrawal, then delete the active key's secret for good; the
    rig then signs with the main wallet (unlocked) or a new mining key."""
    keys = keys or mining_keys(svc)
    rec = keys.active()
    if rec is None:
        raise MiningKeyError("no active mining key to revoke")
    swept, left = _retire_old(svc, keys, rec)
    gone = keys.revoke(rec.address)
    return KeyChange(None, gone, (f"revoked mining key {rec.address}: its secret is deleted", *swept), tuple(left))


def withdraw_unlocked_stakes(svc: WalletService, keys: MiningKeys | None = None) -> list[str]:
    """Withdraw, with the main wallet, every retired or revoked key's stake whose unbonding ended."""
    keys = keys or mining_keys(svc)
    om = _order_market(svc)
    if om is None:
        return []
    now = svc.chain.latest_timestamp()
    done = []
    for r in keys.records():
        if r.state == "active":
            continue
        s = om.stake(r.address, r.payout)
        if s.withdrawing_wei and s.unlock_at <= now:
            om.withdraw_stake(svc.signer(), r.address)
            done.append(f"withdrew {ntk_text(s.withdrawing_wei)} of stake of {r.address}")
    return done
