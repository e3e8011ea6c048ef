"""The mining key of an unattended rig: a separate signing key, used only for market actions,
kept where the app can open it after a reboot without anyone typing a password.

Where the secret lives (`storage`):
- "keyring": the OS keyring (Secret Service, macOS Keychain, Windows Credential Locker),
  service `MINING_KEYRING_SERVICE`, user = the key's address;
- "file": `<folder>/mining-keys/<address>.key` (0600, folder 0700): anyone who can read the
  user's files can sign with it. That is the price of a rig that restarts alone; the key
  therefore holds only gas and what stakes need, and the earnings go to the payout address.

`<folder>/mining-keys.json` (0600, no secrets) records every key: address, payout, storage,
state (active / retired / revoked) and dates. At most one key is active. Rotating retires the
active key (its secret is kept, so the ETH left on it can be swept) and makes a new one;
revoking deletes a key's secret for good. Every write is atomic; a failed step leaves the
records and the secrets as they were. Secrets never reach logs, records or messages.

Blocking (keyring calls can take a moment): call from a worker thread in the GUI.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from common.fsutil import atomic_write_json, atomic_write_text
from wallet.errors import KeystoreError, WalletError
from wallet.keystore import KeyringPasswords

log = logging.getLogger(__name__)

MINING_KEYRING_SERVICE = "knowledge-miner-mining-key"
RECORDS_FILE = "mining-keys.json"
SECRETS_DIR = "mining-keys"
MAX_RECORDS_BYTES = 256 << 10

Storage = Literal["keyring", "file"]
State = Literal["active", "retired", "revoked"]


class MiningKeyError(WalletError):
    """A mining key action that cannot be done; the message says why and what to do."""


class MiningKeyUnavailable(MiningKeyError):
    """The active key exists but its secret cannot be opened now (a locked keyring...)."""


@dataclass(frozen=True)
class MiningKeyRecord:
    address: str
    payout: str
    """The address paid for this key's work and that deposits its stake (the main wallet)."""
    storage: Storage
    state: State
    created_at: float
    ended_at: float | None = None
    """When it was retired or revoked (unix seconds)."""


def _checksum(address: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not isinstance(address, str) or not is_address(address):
        raise MiningKeyError(f"not an Ethereum address: {str(address)[:60]!r}")
    return to_checksum_address(address)


class MiningKeys:
    """The mining keys of one data folder. Not thread-safe: one thread at a time."""

    def __init__(self, folder: Path, *, keyring: KeyringPasswords | None = None):
        self.folder = Path(folder)
        self.keyring = keyring or KeyringPasswords(MINING_KEYRING_SERVICE)

    @property
    def records_path(self) -> Path:
        return self.folder / RECORDS_FILE

    def secret_path(self, address: str) -> Path:
        return self.folder / SECRETS_DIR / f"{_checksum(address).lower()[2:]}.key"

    # --- reading --------------------------------------------------------------------------

    def records(self) -> list[MiningKeyRecord]:
        """Every key ever made here, oldest first. A corrupt records file is an error (never
        silently an empty list: a rig would then make a second key)."""
        p = self.records_path
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            raise MiningKeyError(f"cannot read {p}: {e.strerror}") from None
        try:
            if len(raw) > MAX_RECORDS_BYTES:
                raise ValueError("too large")
            data = json.loads(raw.decode("utf-8"))
            return [MiningKeyRecord(**{k: r[k] for k in MiningKeyRecord.__dataclass_fields__ if k in r})
                    for r in data["keys"]]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise MiningKeyError(f"{p} is corrupt; it was left as it is (move it away to start again)") from None

    def active(self) -> MiningKeyRecord | None:
        return next((r for r in self.records() if r.state == "active"), None)

    def record(self, address: str) -> MiningKeyRecord:
        a = _checksum(address)
        rec = next((r for r in self.records() if r.address == a), None)
        if rec is None:
            raise MiningKeyError(f"no mining key {a} here")
        return rec

    def open(self, record: MiningKeyRecord | None = None):
        """The key's eth-account LocalAccount (the active key by default)."""
        from eth_account import Account

        rec = record or self.active()
        if rec is None:
            raise MiningKeyError("no mining key: create one first")
        if rec.state == "revoked":
            raise MiningKeyError(f"the mining key {rec.address} was revoked")
        if rec.storage == "keyring":
            secret = self.keyring.get(rec.address)
            if not secret:
                raise MiningKeyUnavailable(
                    f"the mining key {rec.address} is in the OS keyring, which did not give it (locked, or not "
                    "running in this session)")
        else:
            try:
                secret = self.secret_path(rec.address).read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                raise MiningKeyUnavailable(f"the mining key file {self.secret_path(rec.address)} is missing") from None
            except OSError as e:
                raise MiningKeyUnavailable(f"cannot read the mining key file: {e.strerror}") from None
        try:
            acct = Account.from_key(secret)
        except Exception:
            raise MiningKeyUnavailable(f"the stored secret of mining key {rec.address} is corrupt") from None
        if acct.address != rec.address:
            raise MiningKeyUnavailable(f"the stored secret of mining key {rec.address} opens another account")
        return acct

    # --- changing -------------------------------------------------------------------------

    def create(self, payout: str, *, storage: Literal["auto", "keyring", "file"] = "auto") -> MiningKeyRecord:
        """A new random key for `payout`; MiningKeyError if one is active (rotate instead)."""
        records = self.records()
        if any(r.state == "active" for r in records):
            raise MiningKeyError("a mining key is already active: rotate it to make a new one")
        return self._add(records, payout, storage)

    def rotate(self, payout: str, *, storage: Literal["auto", "keyring", "file"] = "auto"
               ) -> tuple[MiningKeyRecord, MiningKeyRecord]:
        """Retire the active key (its secret is kept) and make a new one: (new, old)."""
        records = self.records()
        old = next((r for r in records if r.state == "active"), None)
        if old is None:
            raise MiningKeyError("no active mining key to rotate: create one")
        now = time.time()
        retired = replace(old, state="retired", ended_at=now)
        new = self._add([retired if r is old else r for r in records], payout, storage)
        return new, retired

    def revoke(self, address: str | None = None) -> MiningKeyRecord:
        """Delete a key's secret for good (the active key by default) and mark it revoked."""
        records = self.records()
        if address is None:
            rec = next((r for r in records if r.state == "active"), None)
            if rec is None:
                raise MiningKeyError("no active mining key to revoke")
        else:
            a = _checksum(address)
            rec = next((r for r in records if r.address == a), None)
            if rec is None:
                raise MiningKeyError(f"no mining key {a} here")
        if rec.state == "revoked":
            return rec
        done = replace(rec, state="revoked", ended_at=rec.ended_at or time.time())
        self._write([done if r is rec else r for r in records])  # first: a crash leaves a revoked record
        self._delete_secret(rec)
        log.info("mining key %s revoked", rec.address)
        return done

    # --- internals ------------------------------------------------------------------------

    def _add(self, records: list[MiningKeyRecord], payout: str, storage: str) -> MiningKeyRecord:
        from eth_account import Account

        payout = _checksum(payout)
        if storage not in ("auto", "keyring", "file"):
            raise MiningKeyError(f"unknown storage {storage!r} (auto, keyring or file)")
        where: Storage = "keyring" if storage == "keyring" or (storage == "auto" and self.keyring.available()) else "file"
        if where == "keyring" and not self.keyring.available():
            raise MiningKeyError("no OS keyring is available here: keep the key in a file instead")
        acct = Account.create()
        rec = MiningKeyRecord(acct.address, payout, where, "active", time.time())
        secret = "0x" + bytes(acct.key).hex()
        if where == "keyring":
            if not self.keyring.set(acct.address, secret):
                raise MiningKeyError("the OS keyring refused the key: keep it in a file instead")
        else:
            d = self.folder / SECRETS_DIR
            d.mkdir(parents=True, exist_ok=True)
            try:
                os.chmod(d, 0o700)
            except OSError:
                pass
            atomic_write_text(self.secret_path(acct.address), secret + "\n", mode=0o600)
        try:
            self._write([*records, rec])
        except BaseException:
            self._delete_secret(rec)
            raise
        log.info("mining key %s created (%s), paying %s", rec.address, where, payout)
        return rec

    def _write(self, records: list[MiningKeyRecord]) -> None:
        try:
            atomic_write_json(self.records_path, {"version": 1, "keys": [asdict(r) for r in records]}, mode=0o600)
        except OSError as e:
            raise MiningKeyError(f"cannot write {self.records_path}: {e.strerror}") from None

    def _delete_secret(self, rec: MiningKeyRecord) -> None:
        if rec.storage == "keyring":
            self.keyring.delete(rec.address)
            return
        p = self.secret_path(rec.address)
        try:
            size = p.stat().st_size
            with open(p, "r+b") as f:  # overwrite before unlinking (best effort on journaled disks)
                f.write(b"\0" * size)
                f.flush()
                os.fsync(f.fileno())
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise KeystoreError(f"cannot delete the mining key file {p}: {e.strerror}") from None
