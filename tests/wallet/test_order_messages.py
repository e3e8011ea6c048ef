"""The order protocol's typed messages: EIP-712 encoding (checked against eth-account and the
contract), signing, and strict decoding of what a peer sends."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from wallet.order_messages import (
    MESSAGE_TYPES, Claim, ClaimRequest, Domain, KeyReveal, MessageError, Rejection, ResultAck, ResultCommit, Signed,
    Voucher, key_hash, merge_vouchers,
)

ME = Account.from_key(b"\x01" * 32)
OTHER = Account.from_key(b"\x02" * 32)
DOMAIN = Domain(8453, "0x" + "ab" * 20)
SAMPLES = [
    ClaimRequest(7, 3, ME.address, OTHER.address, 1_900_000_000),
    Claim(7, 3, ME.address, OTHER.address),
    ResultCommit(7, 3, ME.address, OTHER.address, b"\x01" * 32, key_hash(b"\x02" * 32)),
    ResultAck(7, 3, ME.address, OTHER.address, b"\x01" * 32, key_hash(b"\x02" * 32)),
    Voucher.of(7, OTHER.address, [0, 3, 127]),
    Rejection(7, 3, ME.address, b"\x01" * 32, b"\x09" * 32, "p2p://evidence/7/3"),
    KeyReveal(7, 3, ME.address, b"\x02" * 32),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_digest_is_the_eip712_hash_wallets_compute(msg):
    signable = encode_typed_data(full_message=msg.typed_data(DOMAIN))
    assert _hash_eip191_message(signable) == msg.digest(DOMAIN)
    assert bytes(ME.sign_typed_data(full_message=msg.typed_data(DOMAIN)).signature) == msg.sign(ME, DOMAIN).signature


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: m.TYPE)
def test_signed_messages_survive_json_and_name_their_signer(msg):
    signed = msg.sign(ME, DOMAIN)
    wire = json.loads(json.dumps(signed.to_json()))
    back = Signed.from_json(wire, expect=type(msg))
    assert back == signed and back.signer(DOMAIN) == ME.address
    back.verify(DOMAIN, ME.address)
    with pytest.raises(MessageError, match="signed by"):
        back.verify(DOMAIN, OTHER.address)


def test_typehashes_match_the_contract():
    from wallet import artifacts

    names = {i["name"] for i in artifacts.load("OrderMarket").abi if i.get("type") == "function"}
    assert {"CLAIM_TYPEHASH", "VOUCHER_TYPEHASH", "RESULT_COMMIT_TYPEHASH", "RESULT_ACK_TYPEHASH"} <= names
    assert Claim.type_string() == "Claim(uint256 orderId,uint16 shard,address miner,address payout)"
    assert Voucher.type_string() == "Voucher(uint256 orderId,address payee,uint256 shards)"


def test_a_signature_is_bound_to_chain_and_contract():
    c = Claim(1, 0, ME.address, ME.address)
    digests = {c.digest(DOMAIN), c.digest(Domain(84532, DOMAIN.contract)), c.digest(Domain(8453, "0x" + "cd" * 20)),
               Claim(2, 0, ME.address, ME.address).digest(DOMAIN)}
    assert len(digests) == 4
    assert c.sign(ME, DOMAIN).signer(Domain(84532, DOMAIN.contract)) != ME.address


@pytest.mark.parametrize("raw, why", [
    ("not an object", "object"),
    ({"type": "Claim", "message": {}, "signature": "0x" + "00" * 65}, "fields"),
    ({"type": "Nope", "message": {}, "signature": "0x" + "00" * 65}, "unknown message type"),
    ({"type": "Claim", "message": {"orderId": 1, "shard": 128, "miner": ME.address, "payout": ME.address},
      "signature": "0x" + "00" * 65}, "below 128"),
    ({"type": "Claim", "message": {"orderId": -1, "shard": 0, "miner": ME.address, "payout": ME.address},
      "signature": "0x" + "00" * 65}, "orderId"),
    ({"type": "Claim", "message": {"orderId": True, "shard": 0, "miner": ME.address, "payout": ME.address},
      "signature": "0x" + "00" * 65}, "orderId"),
    ({"type": "Claim", "message": {"orderId": 1, "shard": 0, "miner": "0x12", "payout": ME.address},
      "signature": "0x" + "00" * 65}, "address"),
    ({"type": "Claim", "message": {"orderId": 1, "shard": 0, "miner": ME.address, "payout": ME.address, "x": 1},
      "signature": "0x" + "00" * 65}, "fields"),
    ({"type": "Voucher", "message": {"orderId": 1, "payee": ME.address, "shards": 2**256},
      "signature": "0x" + "00" * 65}, "shards"),
    ({"type": "ResultAck", "message": {"orderId": 1, "shard": 0, "miner": ME.address, "payout": ME.address,
                                       "resultHash": "0x12",
                                       "resultKeyHash": "0x" + "00" * 32}, "signature": "0x" + "00" * 65}, "resultHash"),
    ({"type": "Rejection", "message": {"orderId": 1, "shard": 0, "miner": ME.address, "resultHash": "0x" + "00" * 32,
                                       "evidenceHash": "0x" + "00" * 32, "evidenceURI": "x" * 5000},
      "signature": "0x" + "00" * 65}, "at most"),
    ({"type": "Claim", "message": {"orderId": 1, "shard": 0, "miner": ME.address, "payout": ME.address},
      "signature": "0x" + "zz" * 65}, "hex"),
    ({"type": "Claim", "message": {"orderId": 1, "shard": 0, "miner": ME.address, "payout": ME.address},
      "signature": "0x" + "00" * 64}, "signature"),
])
def test_hostile_json_is_refused_with_one_line(raw, why):
    with pytest.raises(MessageError, match=why) as e:
        Signed.from_json(raw)
    assert "\n" not in str(e.value)


def test_expecting_one_type_refuses_another():
    signed = SAMPLES[1].sign(ME, DOMAIN)
    with pytest.raises(MessageError, match="expected a Voucher"):
        Signed.from_json(signed.to_json(), expect=Voucher)


def test_zero_signature_recovers_nobody():
    with pytest.raises(MessageError):
        Signed(SAMPLES[1], b"\x00" * 64 + b"\x1b").signer(DOMAIN)


def test_key_reveal_matches_only_its_committed_hash():
    key = b"\x05" * 32
    reveal = KeyReveal(1, 0, ME.address, key)
    assert reveal.matches(key_hash(key)) and not reveal.matches(key_hash(b"\x06" * 32))


def test_vouchers_merge_into_the_newest_per_order_and_payee():
    a = Voucher.of(1, ME.address, [0])
    b = Voucher.of(1, ME.address, [1, 2])
    c = Voucher.of(2, ME.address, [5])
    merged = {(v.order_id, v.payee): v.shard_list() for v in merge_vouchers([a, b, c])}
    assert merged == {(1, ME.address): [0, 1, 2], (2, ME.address): [5]}
    assert a.including(4).shard_list() == [0, 4]
    with pytest.raises(MessageError):
        Voucher.of(1, ME.address, [128])


def test_every_message_type_is_registered():
    assert set(MESSAGE_TYPES) == {"ClaimRequest", "Claim", "ResultCommit", "ResultAck", "Voucher", "Rejection",
                                  "KeyReveal"}
