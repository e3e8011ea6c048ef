"""Keys and envelopes for the transport: Ethereum-key signatures and ECIES to a secp256k1 key.

- `seal_to(pubkey, data)` / `open_sealed(privkey, blob)`: ECIES (coincurve ECDH, HKDF-SHA256,
  ChaCha20-Poly1305), so a content key reaches only the holder of one Ethereum account.
- `sign_request` / `recover_signer`: EIP-191 `personal_sign` over canonical JSON; the
  signer's public key is recovered from the signature (so the reply can be sealed to it).
- `key_commitment(key)`: keccak256 of a content key, what a contract stores at submit and
  checks when the key is revealed with payment.

Private keys are 32 raw bytes; public keys 33 (compressed) or 64/65 bytes (uncompressed).
Nothing here logs or stores a key.
"""

from __future__ import annotations

import json
import os
from typing import Any

from coincurve import PrivateKey, PublicKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_hash.auto import keccak

ENVELOPE_V1 = b"\x01"
KEY_BYTES = 32


class CryptoError(Exception):
    """A signature, envelope or key that does not check out; one-line message."""


def hkdf(secret: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def new_content_key() -> bytes:
    """A fresh random 32-byte content key."""
    return os.urandom(KEY_BYTES)


def key_commitment(key: bytes) -> bytes:
    """keccak256(key): the 32 bytes committed on chain as `resultKeyHash`."""
    return keccak(key)


def public_key(private_key: bytes) -> bytes:
    """The compressed (33-byte) public key of a private key."""
    return PrivateKey(private_key).public_key.format(compressed=True)


def address_of(pubkey: bytes) -> str:
    """The checksum-free lower-case 0x address of a public key."""
    raw = _pubkey(pubkey).format(compressed=False)[1:]
    return "0x" + keccak(raw)[-20:].hex()


def _pubkey(pubkey: bytes) -> PublicKey:
    if len(pubkey) == 64:
        pubkey = b"\x04" + pubkey
    try:
        return PublicKey(pubkey)
    except Exception:
        raise CryptoError("not a secp256k1 public key") from None


# ---- ECIES ------------------------------------------------------------------------------------
def seal_to(pubkey: bytes, data: bytes) -> bytes:
    """Encrypt `data` so only the holder of `pubkey`'s private key can read it."""
    recipient = _pubkey(pubkey).format(compressed=True)
    eph = PrivateKey()
    eph_pub = eph.public_key.format(compressed=True)
    key = hkdf(eph.ecdh(recipient), b"km-ecies/1" + eph_pub + recipient)
    return ENVELOPE_V1 + eph_pub + ChaCha20Poly1305(key).encrypt(b"\0" * 12, data, None)


def open_sealed(private_key: bytes, blob: bytes) -> bytes:
    """Decrypt an envelope from `seal_to`; raises `CryptoError` if it is not for this key."""
    if len(blob) < 1 + 33 + 16 or blob[:1] != ENVELOPE_V1:
        raise CryptoError("not a sealed envelope")
    eph_pub, ct = blob[1:34], blob[34:]
    me = PrivateKey(private_key)
    recipient = me.public_key.format(compressed=True)
    try:
        key = hkdf(me.ecdh(eph_pub), b"km-ecies/1" + eph_pub + recipient)
        return ChaCha20Poly1305(key).decrypt(b"\0" * 12, ct, None)
    except (InvalidTag, ValueError):
        raise CryptoError("envelope is not for this key or was altered") from None


# ---- signed requests ------------------------------------------------------------------------
def canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def eip191_hash(message: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def sign_message(private_key: bytes, message: bytes) -> bytes:
    """A 65-byte r||s||v (v = 27/28) personal_sign signature, as wallets make."""
    sig = PrivateKey(private_key).sign_recoverable(eip191_hash(message), hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover_pubkey(message: bytes, signature: bytes) -> bytes:
    """The compressed public key that made a `sign_message` signature over `message`."""
    if len(signature) != 65:
        raise CryptoError("a signature is 65 bytes")
    v = signature[64] - 27 if signature[64] >= 27 else signature[64]
    if v not in (0, 1):
        raise CryptoError("bad signature recovery id")
    try:
        pub = PublicKey.from_signature_and_message(signature[:64] + bytes([v]), eip191_hash(message), hasher=None)
    except Exception:
        raise CryptoError("signature does not recover to a key") from None
    return pub.format(compressed=True)


def sign_request(private_key: bytes, body: dict[str, Any]) -> dict[str, Any]:
    """`body` plus `sig` (hex) over its canonical JSON."""
    return {**body, "sig": sign_message(private_key, canonical(body)).hex()}


def recover_signer(req: dict[str, Any]) -> tuple[str, bytes]:
    """(address, compressed pubkey) of whoever signed `req` (a `sign_request` result)."""
    body = {k: v for k, v in req.items() if k != "sig"}
    try:
        sig = bytes.fromhex(str(req.get("sig", "")))
    except ValueError:
        raise CryptoError("signature is not hex") from None
    pub = recover_pubkey(canonical(body), sig)
    return address_of(pub), pub
