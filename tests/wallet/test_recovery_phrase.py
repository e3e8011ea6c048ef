"""Recovery phrases: the standard path's account (BIP-39 test vector), one-line errors that
name the problem and never the words, and a restore that writes nothing on a bad phrase."""

from __future__ import annotations

import pytest

from wallet.keystore import Keystore
from wallet.recovery_phrase import (PhraseError, account_from_phrase, check_phrase, new_phrase, quiz_positions,
                                    wrong_positions)

VECTOR = "test test test test test test test test test test test junk"
VECTOR_ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_standard_path_and_typing_slack():
    assert account_from_phrase(VECTOR).address == VECTOR_ADDR0
    assert check_phrase("  Test TEST\ttest test test test test test test test test\njunk ") == VECTOR


@pytest.mark.parametrize("text, message", [
    ("", "enter the recovery phrase"),
    ("test " * 11, "this has 11"),
    ("test " * 11 + "junkk", "word 12 is not in the BIP-39"),
    ("test " * 11 + "test", "checksum"),
])
def test_bad_phrases_say_what_is_wrong_in_one_line(text, message):
    with pytest.raises(PhraseError, match=message) as ei:
        check_phrase(text)
    assert "\n" not in str(ei.value) and "junkk" not in str(ei.value)


def test_new_phrases_are_valid_and_differ():
    a, b = new_phrase(), new_phrase()
    assert a != b and len(a.split()) == 12 and check_phrase(a) == a


def test_create_with_phrase_restores_the_same_account_and_bad_restore_writes_nothing(tmp_path):
    ks = Keystore(tmp_path / "a", scrypt_n=2**10, allow_weak_kdf=True)
    addr, phrase = ks.create_with_phrase("pw-123456")
    other = Keystore(tmp_path / "b", scrypt_n=2**10, allow_weak_kdf=True)
    words = phrase.split()
    swapped = " ".join([words[1], words[0], *words[2:]])
    try:  # a swap usually breaks the checksum (1 in 16 keeps it): either way not this account
        swapped_addr = other.import_mnemonic(swapped, "pw-123456")
    except PhraseError:
        swapped_addr = None
    assert swapped_addr != addr
    assert other.import_mnemonic(phrase.upper(), "pw-123456") == addr
    bad = Keystore(tmp_path / "c", scrypt_n=2**10, allow_weak_kdf=True)
    with pytest.raises(PhraseError):
        bad.import_mnemonic(" ".join(words[:-1] + ["zzz"]), "pw-123456")
    assert not (tmp_path / "c").exists()


def test_quiz_positions_and_answers():
    pos = quiz_positions(12, 3)
    assert len(set(pos)) == 3 and pos == sorted(pos) and all(1 <= p <= 12 for p in pos)
    words = VECTOR.split()
    assert wrong_positions(VECTOR, {1: "Test ", 12: "junk"}) == []
    assert wrong_positions(VECTOR, {1: "test", 12: "test", 13: "x"}) == [12, 13]
    assert words[11] == "junk"
