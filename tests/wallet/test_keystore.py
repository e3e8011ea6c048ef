"""Keystore: create/import/export, atomic 0600 files, wrong password and corrupt files leave
everything untouched, keyring only on opt-in, secrets never in logs or exceptions."""

from __future__ import annotations

import json
import logging
import stat
import traceback

import pytest
from eth_account import Account

from wallet.errors import KeystoreError, WrongPassword
from wallet.keystore import (
    KeyringPasswords,
    Keystore,
    password_from_env,
    password_from_file,
    password_from_keyring,
)

# BIP-39 test vector phrase (no value); its m/44'/60'/0'/0/0 account is fixed
MNEMONIC = "test test test test test test test test test test test junk"
MNEMONIC_ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def ks(tmp_path):
    return Keystore(tmp_path / "keystore", scrypt_n=2**10, allow_weak_kdf=True)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_create_writes_0600_v3_scrypt_file_and_unlocks(ks):
    addr = ks.create("pw-1")
    path = ks.path_for(addr)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ks.folder.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["version"] == 3 and data["crypto"]["kdf"] == "scrypt"
    assert ks.unlock(addr, "pw-1").address == addr
    assert [k.address for k in ks.list()] == [addr]
    assert not list(ks.folder.glob(".*.tmp"))  # no temp file left behind


def test_weak_kdf_refused_outside_tests(tmp_path):
    with pytest.raises(ValueError):
        Keystore(tmp_path, scrypt_n=2**10)


def test_wrong_password_keeps_keystore_untouched(ks):
    addr = ks.create("right")
    before = _snapshot(ks.folder)
    with pytest.raises(WrongPassword):
        ks.unlock(addr, "wrong")
    with pytest.raises(WrongPassword):
        ks.unlock_with(addr, [lambda a: "wrong", lambda a: None])
    assert _snapshot(ks.folder) == before


def test_import_private_key_mnemonic_and_keystore(ks, tmp_path):
    acct = Account.create()
    assert ks.import_private_key(acct.key.hex(), "p") == acct.address
    assert ks.import_mnemonic(MNEMONIC, "p") == MNEMONIC_ADDR0
    assert ks.import_mnemonic(MNEMONIC, "p", index=1) != MNEMONIC_ADDR0
    other = Account.create()
    v3 = tmp_path / "other.json"
    v3.write_text(json.dumps(Account.encrypt(other.key, "old", kdf="scrypt", iterations=2**10)))
    with pytest.raises(WrongPassword):
        ks.import_keystore(v3, "nope")
    assert not ks.has(other.address)
    assert ks.import_keystore(v3, "old", new_password="new") == other.address
    assert ks.unlock(other.address, "new").key == other.key
    with pytest.raises(KeystoreError, match="already in the keystore"):
        ks.import_private_key(acct.key.hex(), "p")


def test_export_never_overwrites(ks, tmp_path):
    addr = ks.create("p")
    dest = ks.export_keystore(addr, tmp_path / "backup.json")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert Account.decrypt(json.loads(dest.read_text()), "p") == ks.unlock(addr, "p").key
    dest.write_text("mine")
    with pytest.raises(KeystoreError, match="already exists"):
        ks.export_keystore(addr, dest)
    assert dest.read_text() == "mine"


def test_corrupt_keystore_reported_and_never_overwritten(ks):
    acct = Account.create()
    path = ks.path_for(acct.address)
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 3, "addr')
    with pytest.raises(KeystoreError, match="corrupt"):
        ks.unlock(acct.address, "p")
    with pytest.raises(KeystoreError, match="already in the keystore"):
        ks.import_private_key(acct.key.hex(), "p")
    assert path.read_text() == '{"version": 3, "addr'
    assert ks.list() == []
    # a V3 file with a damaged ciphertext is corrupt, not "wrong password"
    good = Account.encrypt(acct.key, "p", kdf="scrypt", iterations=2**10)
    good["crypto"]["kdfparams"]["n"] = "x"
    path.write_text(json.dumps(good))
    with pytest.raises(KeystoreError, match="corrupt"):
        ks.unlock(acct.address, "p")


def _shown_text(e: BaseException) -> str:
    """Every exception message a printed traceback would show (the chain, not source lines)."""
    out = []
    while e is not None:
        out += traceback.format_exception_only(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return "".join(out)


def test_secrets_never_reach_logs_or_exceptions(ks, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "wallet.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    handler.setLevel(logging.DEBUG)
    try:
        acct = Account.create()
        key_hex = acct.key.hex().removeprefix("0x")
        ks.import_private_key(acct.key.hex(), "hunter2-secret")
        ks.import_mnemonic(MNEMONIC, "hunter2-secret")
        texts = []
        bad_key = key_hex[:-2] + "zz"  # looks like the key, is not a key
        for bad in (lambda: ks.import_private_key(bad_key, "p"),
                    lambda: ks.import_mnemonic("test " * 11 + "wrongword", "p"),
                    lambda: ks.unlock(acct.address, "hunter2-wrong"),
                    lambda: ks.import_private_key(acct.key.hex(), "p")):
            with pytest.raises(KeystoreError) as ei:
                bad()
            texts.append(_shown_text(ei.value))
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    blob = "\n".join(texts) + log_file.read_text() + caplog.text
    for secret in (key_hex, key_hex[:-2], "hunter2", "wrongword", MNEMONIC):
        assert secret not in blob


def test_password_providers_order_and_keyring_only_on_opt_in(ks, tmp_path, monkeypatch):
    addr = ks.create("s3cret")
    kr = KeyringPasswords(service="kminer-test")
    assert kr.available()  # tests run with keyrings.alt's file backend
    assert kr.set(addr, "s3cret")
    assert password_from_keyring(False, kr)(addr) is None  # not opted in: never read
    asked = []

    def prompt(a):
        asked.append(a)
        return "s3cret"

    assert ks.unlock_with(addr, [password_from_keyring(True, kr), prompt]).address == addr
    assert asked == []  # the keyring answered
    kr.delete(addr)
    assert ks.unlock_with(addr, [password_from_keyring(True, kr), prompt]).address == addr
    assert asked == [addr]
    pf = tmp_path / "pw.txt"
    pf.write_text("s3cret\n")
    assert ks.unlock_with(addr, [password_from_file(pf)]).address == addr
    monkeypatch.setenv("KMINER_PASSWORD", "s3cret")
    assert ks.unlock_with(addr, [password_from_env()]).address == addr
    with pytest.raises(KeystoreError, match="no password given"):
        ks.unlock_with(addr, [lambda a: None])


def test_no_keyring_backend_falls_back_to_prompt(ks, monkeypatch):
    import keyring
    from keyring.backends import fail

    addr = ks.create("pw")
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        kr = KeyringPasswords()
        assert not kr.available()
        assert kr.set(addr, "pw") is False
        assert ks.unlock_with(addr, [password_from_keyring(True, kr), lambda a: "pw"]).address == addr
    finally:
        keyring.set_keyring(old)
