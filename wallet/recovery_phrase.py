"""BIP-39 recovery phrases (English word list): make one, check one a person typed, and the
account it opens at the standard path m/44'/60'/0'/0/0 (eth-account's HD wallet support).

`check_phrase` says what is wrong in one line a person can act on (a word count other than
12/15/18/21/24, a word that is not on the list and where it is, words that do not add up:
the checksum) and never repeats the phrase. Pure functions; any thread.
"""

from __future__ import annotations

import secrets
import unicodedata

from wallet.errors import KeystoreError

WORD_COUNTS = (12, 15, 18, 21, 24)
DEFAULT_WORDS = 12
DEFAULT_PATH = "m/44'/60'/0'/0/0"


class PhraseError(KeystoreError):
    """A recovery phrase that cannot be used; the message says why (never the words)."""


def _mnemonic():
    from eth_account.hdaccount.mnemonic import Mnemonic  # deferred: eth-account takes ~1 s to load
    from eth_account.types import Language

    return Mnemonic(Language.ENGLISH)


def new_phrase(words: int = DEFAULT_WORDS) -> str:
    """A fresh random phrase of `words` words (128 bits of entropy for 12)."""
    if words not in WORD_COUNTS:
        raise PhraseError(f"a recovery phrase has 12, 15, 18, 21 or 24 words, not {words}")
    return _mnemonic().to_mnemonic(secrets.token_bytes(4 * words // 3))


def split_words(text: str) -> list[str]:
    """The words of `text` as typed: any whitespace, any case, Unicode normalised (NFKD)."""
    return unicodedata.normalize("NFKD", text or "").lower().split()


def check_phrase(text: str) -> str:
    """The phrase as one canonical string (single spaces, lower case), or PhraseError."""
    words = split_words(text)
    if not words:
        raise PhraseError("enter the recovery phrase (12 to 24 words)")
    if len(words) not in WORD_COUNTS:
        raise PhraseError(f"a recovery phrase has 12, 15, 18, 21 or 24 words; this has {len(words)}")
    m = _mnemonic()
    known = set(m.wordlist)
    for i, w in enumerate(words, start=1):
        if w not in known:
            raise PhraseError(f"word {i} is not in the BIP-39 English word list: check its spelling")
    phrase = " ".join(words)
    if not m.is_mnemonic_valid(phrase):
        raise PhraseError("the words do not add up (the phrase's checksum is wrong): check their order and spelling")
    return phrase


def account_from_phrase(text: str, *, path: str = DEFAULT_PATH, passphrase: str = ""):
    """The eth-account LocalAccount the phrase opens at `path`; PhraseError if it is not valid."""
    from eth_account import Account

    phrase = check_phrase(text)
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(phrase, passphrase=passphrase, account_path=path)


def quiz_positions(words: int = DEFAULT_WORDS, count: int = 3) -> list[int]:
    """`count` distinct word positions (1-based, ascending) to ask back, chosen at random."""
    if not 1 <= count <= words:
        raise ValueError("count must be between 1 and the number of words")
    return sorted(secrets.SystemRandom().sample(range(1, words + 1), count))


def wrong_positions(phrase: str, answers: dict[int, str]) -> list[int]:
    """The asked positions whose answer is not the phrase's word there (case and spaces ignored)."""
    words = split_words(phrase)
    return [pos for pos, ans in sorted(answers.items())
            if not (1 <= pos <= len(words)) or split_words(ans) != [words[pos - 1]]]
