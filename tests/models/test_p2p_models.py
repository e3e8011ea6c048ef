"""Models sold peer to peer (app.models.p2p) on the in-memory chain with two real transport
peers on 127.0.0.1: the card is public, the weights reach the address that bought the
listing (granted from the ModelPurchased event), a stranger who knows every hash gets the
card and the ciphertext but no key, and a tampered sealed folder is refused."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from common.fsutil import sha256_file
from tests.buyer.conftest import NTK, chain_env  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sale(chain_env, tmp_path):
    from app.models.p2p import ModelSeller
    from app.orders import Peer
    from eth_account import Account

    tester, m, accounts = chain_env
    seller, buyer = accounts[2], accounts[1]
    folder = tmp_path / "model"
    shutil.copytree(ROOT / "resources" / "models" / "product-classifier", folder)
    stranger = Account.create()
    peers = {name: Peer.open(tmp_path / name, host="127.0.0.1", identity_key=bytes(acct.key))
             for name, acct in (("seller", seller), ("buyer", buyer), ("stranger", stranger))}
    s = ModelSeller(m, peers["seller"], tmp_path / "seller-listings")
    uri = s.publish(folder)
    card_sha = sha256_file(folder / "model_card.json")
    lid, _ = m.list_model(seller, card_hash="0x" + card_sha, uri=uri, price_wei=3 * NTK)
    s.listed(lid, uri)
    card = json.loads((folder / "model_card.json").read_text())
    yield m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller
    for p in peers.values():
        p.close()


def _fetch(peer, uri, card_sha, card, key, dest, **kw):
    from app.models.p2p import fetch_model

    return fetch_model(peer, uri, card_sha=card_sha, private_key=bytes(key), dest=dest,
                       weights_file=card["weights"]["file"], weights_sha=card["weights"]["sha256"], **kw)


def test_the_buyer_gets_the_weights_and_a_stranger_only_the_card(sale, tmp_path):
    from app.models.p2p import P2PModelError, fetch_card

    m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller = sale
    # anyone reads what is for sale
    assert sha256_file(fetch_card(peers["stranger"], uri)) == card_sha
    # before buying, the key is refused
    with pytest.raises(P2PModelError, match="did not give the key"):
        _fetch(peers["buyer"], uri, card_sha, card, buyer.key, tmp_path / "early", key_wait_s=0)
    m.buy_model(buyer, lid)
    assert s.step() == [f"model #{lid} bought by {buyer.address}: its key is theirs"]
    got = _fetch(peers["buyer"], uri, card_sha, card, buyer.key, tmp_path / "got")
    assert (got / card["weights"]["file"]).read_bytes() == (folder / card["weights"]["file"]).read_bytes()
    # a stranger who learned every hash: the ciphertext, never the key
    with pytest.raises(P2PModelError, match="did not give the key"):
        _fetch(peers["stranger"], uri, card_sha, card, stranger.key, tmp_path / "stolen", key_wait_s=2)
    assert not (tmp_path / "stolen").exists()


def test_a_sealed_folder_that_is_not_the_listed_card_is_refused(sale, tmp_path):
    from app.models.p2p import P2PModelError

    m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller = sale
    # the seller swaps the sealed folder for other weights behind the same card
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    (other / card["weights"]["file"]).write_bytes(b"\0" * 1000)
    bad_uri = s.publish(other)
    lid2, _ = m.list_model(seller, card_hash="0x" + card_sha, uri=bad_uri, price_wei=NTK)
    s.listed(lid2, bad_uri)
    m.buy_model(buyer, lid2)
    s.step()
    with pytest.raises(P2PModelError, match="weights do not match the card"):
        _fetch(peers["buyer"], bad_uri, card_sha, card, buyer.key, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_two_fetches_by_one_address_through_one_relay_each_get_their_own_weights(sale, tmp_path):
    """A seller nobody can dial (its key service's port is dead in the listings) answers through
    one relay's mailbox; one buyer address fetches two different models at once through it. Each
    fetch takes only the replies to its own requests (the other's stay in the box) and checks
    inside the sealed envelope that it answers its own request: both get their own weights, well
    within the 15 s after which a fetch asks again (a fetch that took the other's reply and dropped
    it, as before, waited for that)."""
    import re
    import threading
    from dataclasses import replace

    from app.models.p2p import fetch_model
    from app.orders.peer import free_port
    from jobs.transport.keys import KeyRing, KeyServer, Mailbox

    m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller = sale
    other = tmp_path / "model-2"
    shutil.copytree(folder, other)
    weights = other / card["weights"]["file"]
    weights.write_bytes(weights.read_bytes()[::-1])  # other bytes, same size
    card2 = json.loads((other / "model_card.json").read_text())
    card2["weights"]["sha256"] = sha256_file(weights)
    (other / "model_card.json").write_text(json.dumps(card2))
    uri2 = s.publish(other)
    card2_sha = sha256_file(other / "model_card.json")
    lid2, _ = m.list_model(seller, card_hash="0x" + card2_sha, uri=uri2, price_wei=NTK)
    s.listed(lid2, uri2)

    relay = KeyServer(KeyRing(tmp_path / "relay-keys"), "127.0.0.1:0", mailbox=Mailbox(),
                      on_mirror=lambda *a: None)
    relay_peer = f"127.0.0.1:{relay.port - 1}"  # a relay's control port is its peer port + 1
    dead = f"127.0.0.1:{free_port('127.0.0.1')}"
    s.peer.node.config = replace(s.peer.node.config, relays=(relay_peer,))

    def behind_nat(u: str) -> str:  # the key service named in the listing cannot be dialed
        return re.sub(r"x\.km=[^&]+", f"x.km={dead}", u) + f"&x.pe={relay_peer}"

    for listing in (lid, lid2):
        m.buy_model(buyer, listing)
    stop = threading.Event()

    def sell() -> None:
        while not stop.is_set():
            s.step()
            stop.wait(0.2)

    got: dict[str, object] = {}

    def fetch(name: str, u: str, c_sha: str, c: dict) -> None:
        try:
            got[name] = fetch_model(peers["buyer"], behind_nat(u), card_sha=c_sha, private_key=bytes(buyer.key),
                                    dest=tmp_path / name, weights_file=c["weights"]["file"],
                                    weights_sha=c["weights"]["sha256"], key_wait_s=14, seller=seller.address)
        except Exception as e:  # noqa: BLE001  (reported below)
            got[name] = e

    seller_thread = threading.Thread(target=sell, daemon=True)
    seller_thread.start()
    fetches = [threading.Thread(target=fetch, args=a) for a in
               (("one", uri, card_sha, card), ("two", uri2, card2_sha, card2))]
    try:
        for t in fetches:
            t.start()
        for t in fetches:
            t.join(90)
    finally:
        stop.set()
        seller_thread.join(10)
        relay.close()
    assert isinstance(got.get("one"), Path) and isinstance(got.get("two"), Path), got
    f = card["weights"]["file"]
    assert (tmp_path / "one" / f).read_bytes() == (folder / f).read_bytes()
    assert (tmp_path / "two" / f).read_bytes() == weights.read_bytes()


def test_one_address_selling_and_buying_through_one_relay_keeps_its_replies(sale, tmp_path):
    """The seller's address also buys (a model of another seller behind NAT) through the relay it
    sells through: its seller loop takes only the key requests from that mailbox (and answers
    them), the key reply to its own purchase stays there for its fetch, which gets the weights."""
    import threading
    from dataclasses import replace

    from app.models.p2p import ModelSeller, fetch_model
    from jobs.transport.keys import KeyRing, KeyServer, Mailbox, post_mail, signed_key_request, take_mail

    m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller = sale
    relay = KeyServer(KeyRing(tmp_path / "relay-keys"), "127.0.0.1:0", mailbox=Mailbox(), on_mirror=lambda *a: None)
    control = f"127.0.0.1:{relay.port}"
    relay_peer = f"127.0.0.1:{relay.port - 1}"
    s.peer.node.config = replace(s.peer.node.config, relays=(relay_peer,))
    try:
        # 1. the box holds a reply to the seller's own (buyer-side) request and a buyer's key request
        m.buy_model(buyer, lid)
        s.step()  # the purchase: granted
        # (the relay takes a reply only to a request left there: the seller asked the stranger)
        post_mail(control, stranger.address, {"kind": "key_request", "request": {"nonce": "ab" * 8}}, bytes(seller.key))
        post_mail(control, seller.address, {"kind": "key_reply", "reply_to": "ab" * 8, "reply": {"ok": False}},
                  bytes(stranger.key))
        req = signed_key_request(weights_of(uri), bytes(buyer.key))
        post_mail(control, seller.address, {"kind": "key_request", "request": req}, bytes(buyer.key))
        s._mail_at = 0.0
        assert any("through relay" in e for e in s.step())  # the key request answered
        assert [x["body"]["reply_to"] for x in take_mail(control, bytes(seller.key), reply_to=["ab" * 8])] == ["ab" * 8]
        assert [x["body"]["reply_to"] for x in take_mail(control, bytes(buyer.key), reply_to=[req["nonce"]])] \
            == [req["nonce"]]

        # 2. end to end: the seller's address buys another seller's model (that seller cannot be
        # dialed) while its own seller loop takes its mailbox at the same relay every 0.1 s
        other_seller = buyer  # has NTK; now lists a model of its own
        other = ModelSeller(m, peers["buyer"], tmp_path / "other-listings")
        peers["buyer"].node.config = replace(peers["buyer"].node.config, relays=(relay_peer,))
        uri2 = other.publish(folder)
        lid2, _ = m.list_model(other_seller, card_hash="0x" + card_sha, uri=uri2, price_wei=NTK)
        other.listed(lid2, uri2)
        m.token.transfer(other_seller, seller.address, 2 * NTK)
        m.buy_model(seller, lid2)
        stop = threading.Event()

        def loops() -> None:
            while not stop.is_set():
                s._mail_at = other._mail_at = 0.0
                s.step()
                other.step()
                stop.wait(0.1)

        t = threading.Thread(target=loops, daemon=True)
        t.start()
        try:
            from app.orders.peer import free_port

            dead = f"127.0.0.1:{free_port('127.0.0.1')}"
            u = re.sub(r"x\.km=[^&]+", f"x.km={dead}", uri2) + f"&x.pe={relay_peer}"
            got = fetch_model(peers["seller"], u, card_sha=card_sha, private_key=bytes(seller.key), dest=tmp_path / "mine",
                              weights_file=card["weights"]["file"], weights_sha=card["weights"]["sha256"],
                              key_wait_s=12, seller=other_seller.address)
        finally:
            stop.set()
            t.join(10)
        f = card["weights"]["file"]
        assert (got / f).read_bytes() == (folder / f).read_bytes()
    finally:
        relay.close()


def weights_of(uri: str) -> str:
    from app.models.p2p import weights_ref

    return weights_ref(uri).info_hash


def test_a_model_buyer_meeting_an_older_seller_says_so_at_once(sale, tmp_path, monkeypatch):
    """The seller's key service answers as an older Knowledge Miner did (key protocol v1: no
    version, the envelope names no request): the buyer's fetch stops at once with one line saying
    the seller runs an older version (not after the whole key wait, not "wrong key"). Through a
    relay too: an older seller's reply (no `reply_to`, only the request's nonce) still reaches the
    buyer's filtered take, so it says the same there."""
    import time

    from app.models.p2p import P2PModelError, _KeyThroughRelays, weights_ref
    from jobs.transport.crypto import open_sealed, recover_signer, seal_to
    from jobs.transport.keys import KeyRing, KeyServer, KeyVersionMismatch, Mailbox, post_mail, take_mail

    m, s, peers, lid, uri, card_sha, card, buyer, stranger, folder, seller = sale
    m.buy_model(buyer, lid)
    s.step()
    ks = s.peer.keys
    real = ks.answer

    def v1_answer(req):
        reply = real(req)
        if not reply.get("ok"):
            return reply
        body = json.loads(open_sealed(bytes(buyer.key), bytes.fromhex(reply["envelope"])))
        _, pub = recover_signer(req)
        return {"ok": True, "envelope": seal_to(pub, json.dumps({"key": body["key"]}).encode()).hex()}

    monkeypatch.setattr(ks, "answer", v1_answer)
    t0 = time.monotonic()
    with pytest.raises(P2PModelError) as e:
        _fetch(peers["buyer"], uri, card_sha, card, buyer.key, tmp_path / "got", key_wait_s=60)
    assert time.monotonic() - t0 < 30
    assert "runs an older Knowledge Miner (key protocol v1; this app speaks v2)" in str(e.value), e.value
    assert "\n" not in str(e.value) and not (tmp_path / "got").exists()

    relay = KeyServer(KeyRing(tmp_path / "relay-keys"), "127.0.0.1:0", mailbox=Mailbox(), on_mirror=lambda *a: None)
    try:
        ref = weights_ref(uri).with_peers(f"127.0.0.1:{relay.port - 1}")
        asking = _KeyThroughRelays(ref, seller.address, bytes(buyer.key))
        assert asking.ask() is None  # the request is left at the relay
        req = take_mail(f"127.0.0.1:{relay.port}", bytes(seller.key), kind="key_request")[0]["body"]["request"]
        old_body = {"kind": "key_reply", "nonce": req["nonce"], "reply": v1_answer(req)}  # as an older seller posts it
        post_mail(f"127.0.0.1:{relay.port}", buyer.address, old_body, bytes(seller.key))
        with pytest.raises(KeyVersionMismatch, match="older Knowledge Miner"):
            asking.ask()
    finally:
        relay.close()


def test_a_key_service_refuses_an_older_request_saying_so(tmp_path):
    """A key request of key protocol v1 (no "v": an older Knowledge Miner) is refused in one line
    that says so, before any key is looked at."""
    import os
    import time

    from jobs.transport.crypto import sign_request
    from jobs.transport.keys import KeyRing, KeyServer

    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0")
    try:
        me = os.urandom(32)
        old = sign_request(me, {"op": "key", "info_hash": "ab" * 32, "items": None, "ts": int(time.time()),
                                "nonce": "cd" * 8})
        reply = ks.answer(old)
        assert reply["ok"] is False and "older Knowledge Miner (key protocol v1; this key service speaks v2)" \
            in reply["error"], reply
    finally:
        ks.close()
