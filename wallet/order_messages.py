"""The signed messages of the order protocol: typed EIP-712 structs, signing, strict checks.

Buyer and miner exchange these over any transport (docs/order-protocol.md has the flow);
the OrderMarket contract checks the same structs under the same domain (its name and
version, the chain id, the contract's address), and every struct names its order, so a
signature is good for one order of one deployment on one chain only.

`Message.sign(account, domain)` gives a `Signed`; `Signed.signer(domain)` recovers who signed
it with the rules the contract applies (65 bytes, v of 27 or 28, low s), so a malleated or
truncated signature is refused here exactly as on chain. `to_json` / `from_json` turn a
signed message into plain JSON and back, validating every field (bounded sizes, exact hex
lengths, known types only): input from a peer is data, never trusted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Iterable, TypeVar

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak, to_checksum_address

DOMAIN_NAME = "Knowledge Miner OrderMarket"
DOMAIN_VERSION = "1"
MAX_SHARDS = 128
MAX_URI_BYTES = 2048
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_UINT_BITS = {"uint16": 16, "uint64": 64, "uint256": 256}


class MessageError(ValueError):
    """A message or signature that is malformed, or not signed by whom it should be."""


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain: one OrderMarket deployment on one chain."""

    chain_id: int
    contract: str

    def __post_init__(self):
        object.__setattr__(self, "contract", _address(self.contract, "contract"))
        if not isinstance(self.chain_id, int) or self.chain_id <= 0:
            raise MessageError(f"bad chain id {self.chain_id!r}")

    def separator(self) -> bytes:
        return keccak(abi_encode(["bytes32", "bytes32", "bytes32", "uint256", "address"], [
            _DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), self.chain_id, self.contract]))

    def as_dict(self) -> dict[str, Any]:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": self.contract}


M = TypeVar("M", bound="Message")


class Message:
    """Base of the typed structs. Subclasses are frozen dataclasses whose `FIELDS` list
    (python name, EIP-712 name, solidity type) in the struct's order."""

    TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[tuple[str, str, str], ...]]

    def __post_init__(self):
        for attr, name, typ in self.FIELDS:
            object.__setattr__(self, attr, _normalize(getattr(self, attr), typ, f"{self.TYPE}.{name}"))

    @classmethod
    def type_string(cls) -> str:
        return f"{cls.TYPE}({','.join(f'{t} {n}' for _a, n, t in cls.FIELDS)})"

    @classmethod
    def typehash(cls) -> bytes:
        return keccak(text=cls.type_string())

    def struct_hash(self) -> bytes:
        types, values = ["bytes32"], [self.typehash()]
        for attr, _name, typ in self.FIELDS:
            v = getattr(self, attr)
            if typ == "string":
                types.append("bytes32")
                values.append(keccak(text=v))
            else:
                types.append(typ)
                values.append(v)
        return keccak(abi_encode(types, values))

    def digest(self, domain: Domain) -> bytes:
        """The 32-byte hash that is signed: keccak(0x1901 || domain separator || struct hash)."""
        return keccak(b"\x19\x01" + domain.separator() + self.struct_hash())

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (what `eth_signTypedData_v4` takes)."""
        return {
            "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}],
                      self.TYPE: [{"name": n, "type": t} for _a, n, t in self.FIELDS]},
            "primaryType": self.TYPE,
            "domain": domain.as_dict(),
            "message": {n: _plain(getattr(self, a), t) for a, n, t in self.FIELDS},
        }

    def sign(self: M, account, domain: Domain) -> "Signed[M]":
        """Sign with an eth-account LocalAccount (the wallet key or the mining key)."""
        sig = account.unsafe_sign_hash(self.digest(domain)).signature
        return Signed(self, bytes(sig))

    def to_dict(self) -> dict[str, Any]:
        return {n: _plain(getattr(self, a), t) for a, n, t in self.FIELDS}

    @classmethod
    def from_dict(cls: type[M], raw: Any) -> M:
        if not isinstance(raw, dict):
            raise MessageError(f"{cls.TYPE}: expected an object")
        names = {n: a for a, n, _t in cls.FIELDS}
        if set(raw) != set(names):
            raise MessageError(f"{cls.TYPE}: expected fields {sorted(names)}, got {sorted(map(str, raw))}")
        return cls(**{names[n]: v for n, v in raw.items()})


@dataclass(frozen=True)
class Signed(Generic[M]):
    """A message and its 65-byte signature (r || s || v)."""

    message: M
    signature: bytes

    def signer(self, domain: Domain) -> str:
        """The address that signed, under the contract's rules; `MessageError` otherwise."""
        return recover(self.message.digest(domain), self.signature)

    def verify(self, domain: Domain, expected: str) -> None:
        """Raise `MessageError` unless `expected` signed this message in `domain`."""
        who = self.signer(domain)
        if who != _address(expected, "expected signer"):
            raise MessageError(f"{self.message.TYPE} signed by {who}, not by {to_checksum_address(expected)}")

    def to_json(self) -> dict[str, Any]:
        return {"type": self.message.TYPE, "message": self.message.to_dict(), "signature": "0x" + self.signature.hex()}

    @staticmethod
    def from_json(raw: Any, *, expect: type[Message] | None = None) -> "Signed":
        if not isinstance(raw, dict) or set(raw) != {"type", "message", "signature"}:
            raise MessageError("a signed message is an object with type, message and signature")
        cls = MESSAGE_TYPES.get(raw["type"]) if isinstance(raw["type"], str) else None
        if cls is None:
            raise MessageError(f"unknown message type {str(raw['type'])[:40]!r}")
        if expect is not None and cls is not expect:
            raise MessageError(f"expected a {expect.TYPE}, got a {cls.TYPE}")
        sig = _hexbytes(raw["signature"], 65, "signature")
        return Signed(cls.from_dict(raw["message"]), sig)


def recover(digest: bytes, signature: bytes) -> str:
    """Signer of `digest` by OpenZeppelin ECDSA's rules: exactly 65 bytes, v in {27, 28},
    0 < r < n, 0 < s <= n/2 (no malleable twin). `MessageError` on anything else."""
    from eth_keys import keys

    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        raise MessageError("a signature is 65 bytes (r, s, v)")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise MessageError(f"signature v must be 27 or 28, got {v}")
    if not (0 < r < SECP256K1_N) or not (0 < s <= SECP256K1_N // 2):
        raise MessageError("signature r or s out of range (a high s is a malleated signature)")
    try:
        pub = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    except Exception:
        raise MessageError("signature does not recover to a key") from None
    return pub.to_checksum_address()


# --- the messages -------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimRequest(Message):
    """Miner -> buyer: the mining key asks for a shard, naming where payment goes. Binds
    nothing on chain; it proves the sender holds the mining key."""

    TYPE: ClassVar[str] = "ClaimRequest"
    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("shard", "shard", "uint16"), ("miner", "miner", "address"),
                        ("payout", "payout", "address"), ("expires_at", "expiresAt", "uint64"))
    order_id: int
    shard: int
    miner: str
    payout: str
    expires_at: int


@dataclass(frozen=True)
class Claim(Message):
    """The claim itself. Buyer -> miner signed by the buyer: the grant (on chain it lets the
    miner submit its result). Miner -> buyer signed by the mining key: the confirmation that
    binds the miner's stake (on chain it lets the buyer slash a no-show)."""

    TYPE: ClassVar[str] = "Claim"
    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("shard", "shard", "uint16"), ("miner", "miner", "address"),
                        ("payout", "payout", "address"))
    order_id: int
    shard: int
    miner: str
    payout: str


@dataclass(frozen=True)
class _Result(Message):
    """The fields a result commitment and its acknowledgement share."""

    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("shard", "shard", "uint16"), ("miner", "miner", "address"),
                        ("payout", "payout", "address"), ("result_hash", "resultHash", "bytes32"),
                        ("result_key_hash", "resultKeyHash", "bytes32"))
    order_id: int
    shard: int
    miner: str
    payout: str
    result_hash: bytes
    result_key_hash: bytes


@dataclass(frozen=True)
class ResultCommit(_Result):
    """Miner -> buyer, signed by the mining key: the result's content hash (of the encrypted
    result) and the hash keccak256(key) of the content key that decrypts it, for the claim
    paying `payout`."""

    TYPE: ClassVar[str] = "ResultCommit"


@dataclass(frozen=True)
class ResultAck(_Result):
    """Buyer -> miner, signed by the buyer: the result with this hash and key hash arrived.
    On chain it lets the miner submit after the deadline if the buyer then falls silent."""

    TYPE: ClassVar[str] = "ResultAck"


@dataclass(frozen=True)
class Voucher(Message):
    """Buyer -> miner: payment. Cumulative: `shards` is the set (bit i = shard i) of every
    shard of the order paid to `payee` so far; a later voucher is a superset. On chain each
    shard is paid once, to whoever redeems a voucher naming it first."""

    TYPE: ClassVar[str] = "Voucher"
    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("payee", "payee", "address"), ("shards", "shards", "uint256"))
    order_id: int
    payee: str
    shards: int

    @classmethod
    def of(cls, order_id: int, payee: str, shards: Iterable[int]) -> "Voucher":
        bits = 0
        for i in shards:
            if not isinstance(i, int) or not 0 <= i < MAX_SHARDS:
                raise MessageError(f"shard {i!r} out of range")
            bits |= 1 << i
        return cls(order_id, payee, bits)

    def shard_list(self) -> list[int]:
        return [i for i in range(MAX_SHARDS) if self.shards >> i & 1]

    def including(self, *shards: int) -> "Voucher":
        return Voucher.of(self.order_id, self.payee, [*self.shard_list(), *shards])

    def covers(self, other: "Voucher") -> bool:
        """True when this voucher pays everything `other` does (same order and payee)."""
        return (self.order_id, self.payee) == (other.order_id, other.payee) and other.shards & ~self.shards == 0


@dataclass(frozen=True)
class Rejection(Message):
    """Buyer -> miner instead of a voucher: the result is refused, with the hash and URI of
    the evidence. On chain only when the miner has submitted the result there."""

    TYPE: ClassVar[str] = "Rejection"
    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("shard", "shard", "uint16"), ("miner", "miner", "address"),
                        ("result_hash", "resultHash", "bytes32"), ("evidence_hash", "evidenceHash", "bytes32"),
                        ("evidence_uri", "evidenceURI", "string"))
    order_id: int
    shard: int
    miner: str
    result_hash: bytes
    evidence_hash: bytes
    evidence_uri: str


@dataclass(frozen=True)
class KeyReveal(Message):
    """Miner -> buyer once its voucher is redeemed: the content key. Checked against the
    committed key hash (`matches`); signed only so the buyer can tell who sent it."""

    TYPE: ClassVar[str] = "KeyReveal"
    FIELDS: ClassVar = (("order_id", "orderId", "uint256"), ("shard", "shard", "uint16"), ("miner", "miner", "address"),
                        ("key", "key", "bytes32"))
    order_id: int
    shard: int
    miner: str
    key: bytes

    def matches(self, result_key_hash: bytes) -> bool:
        return key_hash(self.key) == bytes(result_key_hash)


MESSAGE_TYPES: dict[str, type[Message]] = {c.TYPE: c for c in (ClaimRequest, Claim, ResultCommit, ResultAck, Voucher,
                                                                  Rejection, KeyReveal)}


def key_hash(key: bytes) -> bytes:
    """The `resultKeyHash` of a 32-byte content key: keccak256(key), as the contract checks."""
    if len(key) != 32:
        raise MessageError("a content key is 32 bytes")
    return keccak(bytes(key))


def merge_vouchers(vouchers: Iterable[Voucher]) -> list[Voucher]:
    """The newest voucher per (order, payee) (the union of their sets): what is worth redeeming."""
    best: dict[tuple[int, str], int] = {}
    for v in vouchers:
        best[(v.order_id, v.payee)] = best.get((v.order_id, v.payee), 0) | v.shards
    return [Voucher(o, p, s) for (o, p), s in best.items()]


# --- field checks -------------------------------------------------------------------------

def _normalize(value: Any, typ: str, what: str) -> Any:
    if typ in _UINT_BITS:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** _UINT_BITS[typ]:
            raise MessageError(f"{what} must be an integer in [0, 2^{_UINT_BITS[typ]})")
        if typ == "uint16" and value >= MAX_SHARDS:
            raise MessageError(f"{what} must be below {MAX_SHARDS}")
        return value
    if typ == "address":
        return _address(value, what)
    if typ == "bytes32":
        if isinstance(value, str):
            return _hexbytes(value, 32, what)
        if isinstance(value, (bytes, bytearray)) and len(value) == 32:
            return bytes(value)
        raise MessageError(f"{what} must be 32 bytes")
    if typ == "string":
        if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_URI_BYTES:
            raise MessageError(f"{what} must be a string of at most {MAX_URI_BYTES} bytes")
        return value
    raise AssertionError(typ)


def _address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_address(value) or len(value) != 42:
        raise MessageError(f"{what} must be a 0x-prefixed 20-byte address")
    return to_checksum_address(value)


def _hexbytes(value: Any, n: int, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 2 + 2 * n:
        raise MessageError(f"{what} must be 0x and {2 * n} hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise MessageError(f"{what} is not hex") from None


def _plain(value: Any, typ: str) -> Any:
    if typ == "bytes32":
        return "0x" + value.hex()
    return value


def replace(message: M, **changes: Any) -> M:
    """A copy of `message` with some fields changed (validated like a new one)."""
    return dataclasses.replace(message, **changes)
