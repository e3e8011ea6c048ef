"""The mining key's storage: the OS keyring (keyrings.alt's file backend in tests) or a 0600
file; rotate retires and keeps, revoke deletes the secret; a corrupt records file is an error
and is left as it is; secrets never reach the records, logs or messages."""

from __future__ import annotations

import logging
import stat

import pytest

from wallet.errors import KeystoreError
from wallet.keystore import KeyringPasswords
from wallet.mining_keys import (MINING_KEYRING_SERVICE, MiningKeyError, MiningKeys, MiningKeyUnavailable)

PAYOUT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class NoKeyring(KeyringPasswords):
    """A system without a keyring backend (a headless rig)."""

    @staticmethod
    def available() -> bool:
        return False


def test_file_key_is_0600_opens_after_reopen_and_records_hold_no_secret(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    keys = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE))
    rec = keys.create(PAYOUT)
    assert (rec.storage, rec.state, rec.payout) == ("file", "active", PAYOUT)
    secret_file = keys.secret_path(rec.address)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.records_path.stat().st_mode) == 0o600
    acct = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE)).open()  # "after a reboot"
    assert acct.address == rec.address
    secret = bytes(acct.key).hex()
    assert secret not in keys.records_path.read_text() and secret not in caplog.text


def test_keyring_key_opens_from_the_keyring_and_revoke_deletes_it(tmp_path):
    kr = KeyringPasswords(MINING_KEYRING_SERVICE)
    assert kr.available()  # tests/conftest.py: keyrings.alt's file backend
    keys = MiningKeys(tmp_path)
    rec = keys.create(PAYOUT)
    assert rec.storage == "keyring" and not (tmp_path / "mining-keys").exists()
    assert keys.open().address == rec.address
    gone = keys.revoke()
    assert gone.state == "revoked" and kr.get(rec.address) is None
    assert keys.active() is None
    with pytest.raises(MiningKeyError, match="revoked"):
        keys.open(gone)


def test_one_active_key_rotate_keeps_the_old_secret_revoke_deletes_the_file(tmp_path):
    keys = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE))
    first = keys.create(PAYOUT, storage="file")
    with pytest.raises(MiningKeyError, match="rotate"):
        keys.create(PAYOUT)
    new, old = keys.rotate(PAYOUT)
    assert old.address == first.address and old.state == "retired" and new.state == "active"
    assert keys.open(old).address == first.address  # kept: its ETH can still be swept
    keys.revoke(first.address)
    assert not keys.secret_path(first.address).exists()
    assert [r.state for r in keys.records()] == ["revoked", "active"]


def test_keyring_storage_asked_where_none_exists_is_refused_and_nothing_is_written(tmp_path):
    keys = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE))
    with pytest.raises(MiningKeyError, match="no OS keyring"):
        keys.create(PAYOUT, storage="keyring")
    assert list(tmp_path.iterdir()) == []


def test_a_keyring_that_gives_nothing_is_unavailable_with_the_reason(tmp_path):
    keys = MiningKeys(tmp_path)
    rec = keys.create(PAYOUT)
    KeyringPasswords(MINING_KEYRING_SERVICE).delete(rec.address)  # e.g. a locked keyring answers nothing
    with pytest.raises(MiningKeyUnavailable, match="OS keyring"):
        keys.open()


def test_corrupt_records_are_an_error_and_left_as_they_are(tmp_path):
    keys = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE))
    keys.records_path.write_text("{not json")
    with pytest.raises(MiningKeyError, match="corrupt"):
        keys.create(PAYOUT)
    assert keys.records_path.read_text() == "{not json"
    assert not (tmp_path / "mining-keys").exists()


def test_a_bad_payout_is_one_line_and_writes_nothing(tmp_path):
    keys = MiningKeys(tmp_path, keyring=NoKeyring(MINING_KEYRING_SERVICE))
    with pytest.raises(MiningKeyError, match="not an Ethereum address"):
        keys.create("0x1234")
    assert list(tmp_path.iterdir()) == []
    assert issubclass(MiningKeyUnavailable, MiningKeyError) and not issubclass(MiningKeyError, KeystoreError)
