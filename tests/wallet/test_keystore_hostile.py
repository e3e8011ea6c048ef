"""Keystore files that are corrupt, huge, not files, or a stranger's with ruinous KDF
parameters: a clear one-line KeystoreError quickly, and nothing changed on disk."""

from __future__ import annotations

import json
import os
import time

import pytest

from wallet.errors import KeystoreError
from wallet.keystore import Keystore


@pytest.fixture
def ks(tmp_path):
    return Keystore(tmp_path / "keystore", scrypt_n=2**4, allow_weak_kdf=True)


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_with_the_only_keystore_corrupt_asking_for_accounts_is_an_error_not_an_empty_wallet(ks):
    addr = ks.create("pw")
    path = ks.path_for(addr)
    path.write_text('{"version": 3, "address": ')  # cut short
    before = _snapshot(ks.folder)
    with pytest.raises(KeystoreError, match="no usable account: keystore .* is corrupt") as e:
        ks.accounts()
    assert "\n" not in str(e.value)
    assert ks.list() == [] and [p for p, _ in ks.scan().unusable] == [path]
    assert _snapshot(ks.folder) == before


def test_a_good_account_beside_a_corrupt_file_is_still_usable(ks):
    addr = ks.create("pw")
    (ks.folder / "junk.json").write_text("[[[[")
    assert [k.address for k in ks.accounts()] == [addr]
    assert len(ks.scan().unusable) == 1


def test_an_empty_keystore_has_no_accounts_and_no_error(ks):
    assert ks.accounts() == []


def test_a_huge_or_deep_or_special_keystore_file_is_refused_quickly(ks):
    ks.folder.mkdir(parents=True)
    (ks.folder / "huge.json").write_bytes(b" " * (8 << 20))
    (ks.folder / "deep.json").write_bytes(b"[" * 32_000 + b"]" * 32_000)  # under the size cap
    os.mkfifo(ks.folder / "fifo.json")  # an open() that would block forever without O_NONBLOCK
    t0 = time.monotonic()
    scan = ks.scan()
    assert time.monotonic() - t0 < 2
    why = {p.name: w for p, w in scan.unusable}
    assert "too large" in why["huge.json"]
    assert "corrupt (not JSON)" in why["deep.json"]
    assert "not a regular file" in why["fifo.json"]


def test_a_strangers_keystore_asking_scrypt_for_terabytes_is_refused_before_deriving(ks, tmp_path):
    from eth_account import Account

    data = Account.encrypt(Account.create().key, "pw", kdf="scrypt", iterations=2**4)
    data["crypto"]["kdfparams"]["n"] = 2**30
    src = tmp_path / "theirs.json"
    src.write_text(json.dumps(data))
    t0 = time.monotonic()
    with pytest.raises(KeystoreError, match="cannot be opened safely: scrypt parameters n=1073741824"):
        ks.import_keystore(src, "pw")
    assert time.monotonic() - t0 < 1
    assert not ks.folder.exists() or not any(ks.folder.iterdir())
