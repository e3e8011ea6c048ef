"""Local keys in Web3 Secret Storage (keystore V3, scrypt) files, one per address.

`<folder>/<address>.json` (0600, folder 0700), written atomically. Creating, importing (private
key, V3 file, BIP-39 mnemonic) and exporting never overwrite an existing file; a corrupt file
is reported and left as it is. A wrong password raises `WrongPassword` and changes nothing.

Passwords come from a chain of `PasswordProvider`s (a password file, an environment variable,
the OS keyring when the user opted in, an interactive prompt): see `unlock`. The keyring is
used only on opt-in, and when no keyring backend exists the next provider (the prompt) is asked
instead of failing. Private keys, mnemonics and passwords are never logged, stored in settings,
or put in exception messages.

Threading: methods block (scrypt takes ~0.1-1 s); the GUI calls them from an executor.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from common.fsutil import atomic_write_text
from wallet.errors import KeystoreError, WrongPassword

log = logging.getLogger(__name__)

DEFAULT_SCRYPT_N = 2**18
"""scrypt cost of keystores the app writes (the Web3 Secret Storage default)."""
MIN_SCRYPT_N = 2**14
"""Lowest cost the app accepts for its own files; tests may go lower with `allow_weak_kdf`."""
KEYRING_SERVICE = "knowledge-miner-wallet"
DEFAULT_HD_PATH = "m/44'/60'/0'/0/{index}"

PasswordProvider = Callable[[str], "str | None"]
"""Given an address (checksummed), returns its password, or None when it has none to offer."""


MAX_KEYSTORE_BYTES = 64 << 10
"""A V3 keystore is under 1 KB; anything over this is not one (and is not read whole)."""


@dataclass(frozen=True)
class KeyInfo:
    address: str
    path: Path


@dataclass(frozen=True)
class KeystoreScan:
    """Every `*.json` in the keystore folder: the usable accounts, and the files that are not
    (path, one-line reason), so a keystore whose only file is corrupt is told from an empty one."""

    accounts: tuple[KeyInfo, ...]
    unusable: tuple[tuple[Path, str], ...]


def _checksum(address: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not isinstance(address, str) or not is_address(address):
        raise KeystoreError(f"not an Ethereum address: {address!r}")
    return to_checksum_address(address)


class Keystore:
    """The keystore folder. `scrypt_n` below MIN_SCRYPT_N needs `allow_weak_kdf=True` (tests)."""

    def __init__(self, folder: Path, *, scrypt_n: int = DEFAULT_SCRYPT_N, allow_weak_kdf: bool = False):
        if scrypt_n < MIN_SCRYPT_N and not allow_weak_kdf:
            raise ValueError(f"scrypt_n {scrypt_n} is too weak for real keys (minimum {MIN_SCRYPT_N})")
        self.folder = Path(folder)
        self.scrypt_n = scrypt_n

    # --- listing ------------------------------------------------------------------------

    def path_for(self, address: str) -> Path:
        return self.folder / f"{_checksum(address).lower()[2:]}.json"

    def list(self) -> list[KeyInfo]:
        """Accounts whose files look like keystores (corrupt files are skipped, with a warning)."""
        scan = self.scan()
        for _path, why in scan.unusable:
            log.warning("%s", why)
        return list(scan.accounts)

    def scan(self) -> KeystoreScan:
        """The usable accounts and the unusable files (see `KeystoreScan`)."""
        good, bad = [], []
        if not self.folder.exists():
            return KeystoreScan((), ())
        for p in sorted(self.folder.glob("*.json")):
            try:
                good.append(KeyInfo(_checksum("0x" + self._read(p)["address"].removeprefix("0x")), p))
            except KeystoreError as e:
                bad.append((p, str(e)))
        return KeystoreScan(tuple(good), tuple(bad))

    def accounts(self) -> list[KeyInfo]:
        """The usable accounts; `KeystoreError` when there is none but some keystore file is
        unusable (a corrupt keystore is a problem to report, not an empty wallet)."""
        scan = self.scan()
        if not scan.accounts and scan.unusable:
            path, why = scan.unusable[0]
            more = f" (and {len(scan.unusable) - 1} more unusable file(s))" if len(scan.unusable) > 1 else ""
            raise KeystoreError(f"no usable account: {why}{more}; restore the file from a backup or import the key again")
        return list(scan.accounts)

    def has(self, address: str) -> bool:
        return self.path_for(address).exists()

    # --- creating and importing ---------------------------------------------------------

    def create(self, password: str) -> str:
        """A new random account; returns its address."""
        from eth_account import Account

        return self._store(Account.create(), password)

    def create_with_phrase(self, password: str) -> tuple[str, str]:
        """A new account from a fresh BIP-39 recovery phrase (at m/44'/60'/0'/0/0); returns
        (address, phrase). The phrase is not stored anywhere: show it once to the user."""
        from wallet.recovery_phrase import account_from_phrase, new_phrase

        phrase = new_phrase()
        return self._store(account_from_phrase(phrase), password), phrase

    def import_private_key(self, private_key: str, password: str) -> str:
        from eth_account import Account

        try:
            acct = Account.from_key(private_key.strip())
        except Exception:
            raise KeystoreError("that is not a valid private key (expected 64 hex digits)") from None
        return self._store(acct, password)

    def import_mnemonic(self, mnemonic: str, password: str, *, index: int = 0, passphrase: str = "") -> str:
        """The account at m/44'/60'/0'/0/`index` of a BIP-39 phrase."""
        from wallet.recovery_phrase import account_from_phrase

        if not password:  # before the slow derivation: nothing is written either way
            raise KeystoreError("an empty password is not allowed")
        acct = account_from_phrase(mnemonic, path=DEFAULT_HD_PATH.format(index=index), passphrase=passphrase)
        return self._store(acct, password)

    def import_keystore(self, source: Path, password: str, *, new_password: str | None = None) -> str:
        """Import a V3 file: it must open with `password`; stored re-encrypted (same or new password)."""
        data = self._read(Path(source))
        key = self._decrypt(data, password, str(source))
        from eth_account import Account

        return self._store(Account.from_key(key), new_password if new_password is not None else password)

    def export_keystore(self, address: str, dest: Path) -> Path:
        """Copy the account's keystore to `dest` (0600); never overwrites an existing file."""
        src = self.path_for(address)
        text = self._raw(src)
        dest = Path(dest)
        if dest.exists():
            raise KeystoreError(f"{dest} already exists; choose another file name")
        atomic_write_text(dest, text, mode=0o600)
        return dest

    # --- unlocking ----------------------------------------------------------------------

    def unlock(self, address: str, password: str):
        """The account's LocalAccount; `WrongPassword` if the password does not open it."""
        from eth_account import Account

        path = self.path_for(address)
        return Account.from_key(self._decrypt(self._read(path), password, str(path)))

    def unlock_with(self, address: str, providers: Iterable[PasswordProvider]):
        """Try each provider's password in turn; the first that opens the keystore wins.

        Raises `WrongPassword` if a provider's password was wrong and no later one helped,
        `KeystoreError` if no provider offered a password at all.
        """
        address = _checksum(address)
        wrong = False
        for provider in providers:
            password = provider(address)
            if password is None:
                continue
            try:
                return self.unlock(address, password)
            except WrongPassword:
                wrong = True
        if wrong:
            raise WrongPassword(f"wrong password for {address}")
        raise KeystoreError(f"no password given for {address} (use --password-file, KMINER_PASSWORD or a terminal)")

    # --- internals ----------------------------------------------------------------------

    def _store(self, acct, password: str) -> str:
        from eth_account import Account

        if not password:
            raise KeystoreError("an empty password is not allowed")
        address = acct.address
        path = self.path_for(address)
        if path.exists():
            raise KeystoreError(f"account {address} is already in the keystore ({path.name}); nothing was changed")
        data = Account.encrypt(acct.key, password, kdf="scrypt", iterations=self.scrypt_n)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(self.folder, 0o700)
        except OSError:
            pass
        atomic_write_text(path, json.dumps(data) + "\n", mode=0o600)
        log.info("stored keystore for %s", address)
        return address

    def _raw(self, path: Path) -> str:
        from common.boundedfile import BoundedReadError, read_bounded

        if not path.exists() and not path.is_symlink():
            raise KeystoreError(f"no keystore file {path}")
        try:
            return read_bounded(path, MAX_KEYSTORE_BYTES, what="keystore", follow_symlinks=True).decode("utf-8")
        except BoundedReadError as e:
            raise KeystoreError(f"cannot read {e}") from None
        except UnicodeDecodeError:
            raise KeystoreError(f"keystore {path} is corrupt (not UTF-8 text); it was left as it is") from None

    def _read(self, path: Path) -> dict:
        from common.safejson import SPEC_LIMITS, SafeJsonError, loads_bounded

        text = self._raw(path)
        try:
            data = loads_bounded(text, SPEC_LIMITS.but(max_bytes=MAX_KEYSTORE_BYTES), what="keystore")
        except SafeJsonError:
            raise KeystoreError(f"keystore {path} is corrupt (not JSON); it was left as it is") from None
        if not isinstance(data, dict) or data.get("version") != 3 or not isinstance(data.get("crypto") or data.get("Crypto"), dict) \
                or not isinstance(data.get("address"), str):
            raise KeystoreError(f"keystore {path} is corrupt (not a V3 keystore); it was left as it is")
        problem = _kdf_problem(data.get("crypto") or data.get("Crypto"))
        if problem:
            raise KeystoreError(f"keystore {path} cannot be opened safely: {problem}; it was left as it is")
        return data

    @staticmethod
    def _decrypt(data: dict, password: str, where: str) -> bytes:
        from eth_account import Account

        try:
            return bytes(Account.decrypt(data, password))
        except ValueError as e:
            if "MAC mismatch" in str(e):
                raise WrongPassword(f"wrong password for keystore {Path(where).name}") from None
            raise KeystoreError(f"keystore {where} is corrupt ({type(e).__name__}); it was left as it is") from None
        except Exception as e:
            raise KeystoreError(f"keystore {where} is corrupt ({type(e).__name__}); it was left as it is") from None


MAX_SCRYPT_N = 2**20
MAX_PBKDF2_ROUNDS = 10_000_000


def _kdf_problem(crypto: dict) -> str | None:
    """Why the key derivation a keystore asks for would exhaust memory or time (a stranger's
    file can ask scrypt for terabytes), or None when it is within what wallets use."""
    params = crypto.get("kdfparams")
    if not isinstance(params, dict):
        return "no kdfparams"
    ints = {k: v for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool)}
    if crypto.get("kdf") == "scrypt":
        n, r, p = ints.get("n", 0), ints.get("r", 0), ints.get("p", 0)
        if not (2 <= n <= MAX_SCRYPT_N and 1 <= r <= 16 and 1 <= p <= 16 and n * r * p <= MAX_SCRYPT_N * 8):
            return f"scrypt parameters n={n} r={r} p={p} are outside what wallets use (n up to {MAX_SCRYPT_N})"
    elif crypto.get("kdf") == "pbkdf2":
        if not 1 <= ints.get("c", 0) <= MAX_PBKDF2_ROUNDS:
            return f"pbkdf2 rounds {params.get('c')!r} are outside 1..{MAX_PBKDF2_ROUNDS:,}"
    else:
        return f"unknown key derivation {str(crypto.get('kdf'))[:20]!r}"
    if not 16 <= ints.get("dklen", 32) <= 64:
        return "the derived key length is not 16..64 bytes"
    return None


class KeyringPasswords:
    """Passwords in the OS keyring, keyed by address. Used only when the user opted in."""

    def __init__(self, service: str = KEYRING_SERVICE):
        self.service = service

    @staticmethod
    def available() -> bool:
        """True when a real keyring backend exists (not keyring's `fail` or `null` backend)."""
        try:
            import keyring

            kr = keyring.get_keyring()
        except Exception:
            return False
        return getattr(kr, "priority", 0) > 0 and type(kr).__module__ not in ("keyring.backends.fail", "keyring.backends.null")

    def get(self, address: str) -> str | None:
        if not self.available():
            return None
        import keyring

        try:
            return keyring.get_password(self.service, _checksum(address))
        except Exception as e:  # a locked or broken keyring: fall through to the next provider
            log.warning("keyring unavailable: %s", type(e).__name__)
            return None

    def set(self, address: str, password: str) -> bool:
        if not self.available():
            return False
        import keyring

        try:
            keyring.set_password(self.service, _checksum(address), password)
            return True
        except Exception as e:
            log.warning("could not store the password in the keyring: %s", type(e).__name__)
            return False

    def delete(self, address: str) -> None:
        if not self.available():
            return
        import keyring

        try:
            keyring.delete_password(self.service, _checksum(address))
        except Exception:
            pass


def password_from_file(path: Path) -> PasswordProvider:
    """The first line of `path` (a trailing newline is not part of the password)."""

    def provide(_address: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8").splitlines()[0]
        except FileNotFoundError:
            raise KeystoreError(f"password file {path} does not exist") from None
        except IndexError:
            raise KeystoreError(f"password file {path} is empty") from None

    return provide


def password_from_env(name: str = "KMINER_PASSWORD") -> PasswordProvider:
    return lambda _address: os.environ.get(name) or None


def password_from_keyring(opted_in: bool, keyring: KeyringPasswords | None = None) -> PasswordProvider:
    kr = keyring or KeyringPasswords()
    return lambda address: kr.get(address) if opted_in else None
