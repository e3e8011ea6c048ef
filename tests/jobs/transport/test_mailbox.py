"""A relay's mailbox (jobs.transport.keys.Mailbox behind a KeyServer on 127.0.0.1) and the key
service's connection limits: only the
addressee takes its mail, a replayed signed request does nothing, boxes and bodies are bounded,
and a node that is not a relay keeps no mail."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from jobs.transport.crypto import address_of, public_key, sign_request
from jobs.transport.keys import KeyRefused, KeyRing, KeyServer, Mailbox, post_mail, take_mail

ALICE, BOB, EVE = os.urandom(32), os.urandom(32), os.urandom(32)
addr = lambda k: address_of(public_key(k))  # noqa: E731


def ask(relay: str, asker: bytes, seller: bytes, nonce: str) -> None:
    """`asker` leaves a key request with `nonce` for `seller` (so a reply to it may come)."""
    post_mail(relay, addr(seller), {"kind": "key_request", "request": {"nonce": nonce}}, asker)


@pytest.fixture
def relay(tmp_path):
    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0", mailbox=Mailbox(per_box=3, per_sender=2))
    yield f"127.0.0.1:{ks.port}"
    ks.close()


def test_only_the_addressee_takes_its_mail(relay):
    post_mail(relay, addr(BOB), {"kind": "hello", "n": 1}, ALICE)
    assert take_mail(relay, EVE) == []
    got = take_mail(relay, BOB)
    assert got == [{"from": addr(ALICE), "body": {"kind": "hello", "n": 1}}]
    assert take_mail(relay, BOB) == []  # taken once


def test_a_replayed_request_does_nothing(relay):
    req = sign_request(ALICE, {"op": "post", "to": addr(BOB), "body": {"n": 1}, "ts": int(time.time()),
                               "nonce": "aa" * 8})
    for expect in (True, False):
        with socket.create_connection(("127.0.0.1", int(relay.rsplit(":", 1)[1])), timeout=5) as s:
            s.sendall(json.dumps(req).encode() + b"\n")
            reply = json.loads(s.makefile("rb").readline())
        assert reply["ok"] is expect, reply
    assert len(take_mail(relay, BOB)) == 1


def test_boxes_and_bodies_are_bounded(relay):
    for i in range(2):
        post_mail(relay, addr(BOB), {"n": i}, ALICE)
    with pytest.raises(KeyRefused, match="too many of your messages"):
        post_mail(relay, addr(BOB), {"n": 2}, ALICE)  # one sender cannot fill the box
    post_mail(relay, addr(BOB), {"n": 3}, EVE)
    with pytest.raises(KeyRefused, match="full"):
        post_mail(relay, addr(BOB), {"n": 4}, EVE)
    with pytest.raises(KeyRefused, match="at most"):
        post_mail(relay, addr(ALICE), {"blob": "x" * (9 << 10)}, BOB)
    with pytest.raises(KeyRefused, match="0x address"):
        post_mail(relay, "bob", {"n": 1}, ALICE)


def test_a_node_that_is_not_a_relay_keeps_no_mail(tmp_path):
    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0")
    try:
        with pytest.raises(KeyRefused, match="no mailbox"):
            post_mail(f"127.0.0.1:{ks.port}", addr(BOB), {"n": 1}, ALICE)
    finally:
        ks.close()



def test_a_full_box_is_taken_in_parts_and_nothing_is_lost(tmp_path):
    """Many large messages: each take answers at most MAIL_TAKE_BYTES (its reply line fits) and
    leaves the rest for the next; strangers' junk cannot make the addressee's take fail."""
    from jobs.transport.keys import MAIL_TAKE_BYTES

    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0", mailbox=Mailbox())
    relay = f"127.0.0.1:{ks.port}"
    try:
        senders = [os.urandom(32) for _ in range(3)]
        for k in senders:
            for i in range(8):
                post_mail(relay, addr(BOB), {"n": i, "pad": "x" * 7_000}, k)
        got: list = []
        while batch := take_mail(relay, BOB):
            assert sum(len(json.dumps(m["body"])) for m in batch) <= MAIL_TAKE_BYTES
            got += batch
        assert len(got) == 24
    finally:
        ks.close()


def test_a_trickling_server_cannot_hold_a_caller(tmp_path):
    """A 'relay' that answers one byte a second: the call gives up after its timeout, not after
    the whole line."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def trickle():
        c, _ = srv.accept()
        c.recv(65536)
        try:
            for _ in range(30):
                c.sendall(b" ")
                time.sleep(0.5)
        except OSError:
            pass
        c.close()

    threading.Thread(target=trickle, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyRefused, match="too slow"):
        take_mail(f"127.0.0.1:{srv.getsockname()[1]}", BOB, timeout_s=2)
    assert time.monotonic() - t0 < 4
    srv.close()


def test_a_key_service_serves_a_bounded_number_of_strangers_and_cuts_slow_ones(tmp_path):
    """Connections that send nothing: at most MAX_CONNECTIONS are held (the next is told it is
    busy), each is cut at its deadline, and the service answers again afterwards."""
    from common.guarded_server import ConnectionGuard
    from jobs.transport import keys as keys_mod

    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0", mailbox=Mailbox())
    ks._srv.guard.close()
    ks._srv.guard = ConnectionGuard(3, 1.0, busy=keys_mod._BUSY_LINE)
    idle = [socket.create_connection(("127.0.0.1", ks.port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", ks.port), timeout=5)
        assert b"busy" in extra.makefile("rb").readline()
        extra.close()
        time.sleep(1.6)  # past the deadline: the idle ones were cut
        assert all(s.recv(1) == b"" for s in idle)
        post_mail(f"127.0.0.1:{ks.port}", addr(BOB), {"n": 1}, ALICE)
        assert len(take_mail(f"127.0.0.1:{ks.port}", BOB)) == 1
    finally:
        for s in idle:
            s.close()
        ks.close()


def test_a_take_for_one_request_leaves_the_replies_to_others(relay):
    """Two requests of one address wait for replies in one box: each take names its request's
    nonce and gets only its own reply; the other stays for its own take."""
    ask(relay, BOB, ALICE, "aa" * 8)
    ask(relay, BOB, ALICE, "bb" * 8)
    post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "aa" * 8, "n": 1}, ALICE)
    post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "bb" * 8, "n": 2}, ALICE)
    got = take_mail(relay, BOB, reply_to=["bb" * 8])
    assert [m["body"]["n"] for m in got] == [2]
    assert take_mail(relay, BOB, reply_to=["bb" * 8]) == []
    assert [m["body"]["n"] for m in take_mail(relay, BOB, reply_to=["aa" * 8, "cc" * 8])] == [1]


def test_a_go_between_cannot_swap_two_key_replies(tmp_path):
    """Two answers sealed to one asker, for two contents: each names its request inside the
    envelope, so the answer to one request is refused as the answer to the other."""
    from jobs.transport.keys import open_key_reply, signed_key_request
    from jobs.transport.sealed import seal

    ring = KeyRing(tmp_path / "keys")
    ks = KeyServer(ring, "127.0.0.1:0")
    try:
        src = tmp_path / "a.txt"
        src.write_text("a")
        hashes = []
        for name in ("x", "y"):
            key = os.urandom(32)
            header = seal(src, tmp_path / f"{name}.kmseal", key)
            ih = name * 64
            ring.put(ih, key, header)
            ring.grant(ih, addr(BOB))
            hashes.append(ih)
        reqs = [signed_key_request(ih, BOB) for ih in hashes]
        replies = [ks.answer(r) for r in reqs]
        assert open_key_reply(replies[0], BOB, "relay", nonce=reqs[0]["nonce"], info_hash=hashes[0])
        with pytest.raises(KeyRefused, match="answer to another request"):
            open_key_reply(replies[1], BOB, "relay", nonce=reqs[0]["nonce"], info_hash=hashes[0])
        with pytest.raises(KeyRefused, match="answer to another request"):
            open_key_reply(replies[1], BOB, "relay", info_hash=hashes[0])
    finally:
        ks.close()


def test_a_strangers_reply_to_of_the_wrong_type_neither_breaks_takes_nor_the_byte_count(tmp_path):
    """A stranger posts bodies whose `reply_to` is a list or a dict (unhashable): the addressee's
    filtered takes still get their replies, the junk is dropped, and the relay's byte count stays
    the sum of what it holds (it once went negative, switching the memory cap off)."""
    box = Mailbox()
    ks = KeyServer(KeyRing(tmp_path / "keys"), "127.0.0.1:0", mailbox=box)
    relay = f"127.0.0.1:{ks.port}"
    try:
        ask(relay, BOB, ALICE, "aa" * 8)
        ask(relay, BOB, ALICE, "bb" * 8)
        take_mail(relay, ALICE, kind="key_request")
        post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "aa" * 8, "n": 1}, ALICE)
        post_mail(relay, addr(BOB), {"reply_to": []}, EVE)
        post_mail(relay, addr(BOB), {"reply_to": {"x": 1}}, EVE)
        post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "bb" * 8, "n": 2}, ALICE)
        assert [m["body"]["n"] for m in take_mail(relay, BOB, reply_to=["aa" * 8])] == [1]
        assert box.held_bytes()[0] == box.held_bytes()[1] > 0
        assert [m["body"]["n"] for m in take_mail(relay, BOB, reply_to=["bb" * 8])] == [2]
        assert box.held_bytes() == (0, 0)  # the junk went with the filtered takes
        for i in range(5):  # the attack the review measured: a match, junk, take, again and again
            ask(relay, EVE, EVE, f"cc{i}")
            take_mail(relay, EVE, kind="key_request")
            post_mail(relay, addr(EVE), {"reply_to": f"cc{i}"}, EVE)
            post_mail(relay, addr(EVE), {"reply_to": [1, 2]}, EVE)
            assert len(take_mail(relay, EVE, reply_to=[f"cc{i}"])) == 1
            assert box.held_bytes() == (0, 0)
    finally:
        ks.close()


def test_the_byte_count_is_the_sum_held_after_mixed_posts_and_takes():
    """Invariant: after any mix of posts, plain, filtered (by reply_to, by kind) and partial takes,
    the mailbox's byte count equals the sum of the sizes of the messages it holds."""
    import random

    rng = random.Random(5)
    box = Mailbox(per_box=64, per_sender=64)
    people = [f"0x{i:040x}" for i in range(4)]
    shapes = [lambda: {"kind": "key_reply", "reply_to": rng.choice(["aa", "bb", "cc"]), "pad": "x" * rng.randrange(9000)},
              lambda: {"kind": "key_request", "request": {"nonce": rng.choice(["aa", "bb", "cc"])}},
              lambda: {"reply_to": rng.choice([[], {}, 3, None, ["aa"]])},
              lambda: {"kind": rng.choice(["hello", 7, None])}]
    for step in range(600):
        who = rng.choice(people)
        if rng.random() < 0.6:
            try:
                box.post(rng.choice(people), who, rng.choice(shapes)())
            except KeyRefused:
                pass
        else:
            box.take(who, reply_to=rng.choice([None, {"aa"}, {"bb", "cc"}]), kind=rng.choice([None, "key_request"]))
        kept, held = box.held_bytes()
        assert kept == held >= 0, (step, kept, held)


def test_a_filtered_take_drops_junk_but_keeps_key_requests_and_others_replies(relay):
    """Junk with no string `reply_to` goes with the addressee's filtered take (throwaway keys
    cannot fill a buyer's box for the whole TTL); a key request for the seller at the same
    address and a reply to another request of it stay; a take by kind takes only that kind."""
    ask(relay, BOB, ALICE, "bb" * 8)
    take_mail(relay, ALICE, kind="key_request")
    post_mail(relay, addr(BOB), {"junk": 1}, EVE)
    post_mail(relay, addr(BOB), {"kind": "key_request", "request": {"n": 1}}, ALICE)
    post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "bb" * 8}, ALICE)
    assert take_mail(relay, BOB, reply_to=["aa" * 8]) == []
    for _ in range(2):  # EVE's box share is free again: the junk is gone
        post_mail(relay, addr(BOB), {"junk": 2}, EVE)
        take_mail(relay, BOB, reply_to=["aa" * 8])
    assert [m["body"]["kind"] for m in take_mail(relay, BOB, kind="key_request")] == ["key_request"]
    assert [m["body"]["reply_to"] for m in take_mail(relay, BOB)] == ["bb" * 8]


def test_a_sellers_take_by_kind_drops_junk_too(relay):
    """The seller takes only key requests now; junk in its box still goes with that take (as the
    whole-box take once drained it), so strangers cannot keep its box full for buyers."""
    post_mail(relay, addr(BOB), {"junk": 1}, EVE)
    post_mail(relay, addr(BOB), {"junk": 2}, EVE)
    post_mail(relay, addr(BOB), {"kind": "key_request", "request": {}}, ALICE)
    assert len(take_mail(relay, BOB, kind="key_request")) == 1
    post_mail(relay, addr(BOB), {"kind": "key_request", "request": {"n": 2}}, EVE)  # room again
    post_mail(relay, addr(BOB), {"kind": "key_request", "request": {"n": 3}}, EVE)


def test_junk_replies_from_many_keys_neither_fill_a_box_nor_keep_out_the_real_reply(relay):
    """The review's flood: 32 fresh keys x 8 `key_reply` bodies with made-up string `reply_to`s
    to BOB: each refused at the relay (no request of BOB's waits for it), so BOB's box stays
    empty; BOB's real request gets its reply, once (a second reply to it is refused), and junk
    key requests filling BOB's box do not keep that reply out."""
    refused = 0
    for k in range(32):
        key = os.urandom(32)
        for i in range(8):
            try:
                post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": f"junk{k}-{i}"}, key)
            except KeyRefused as e:
                assert "waits for this reply" in str(e)
                refused += 1
    assert refused == 256  # without the fix: "that mailbox is full" for all but the first 3
    ask(relay, BOB, ALICE, "ab" * 8)
    for _ in range(3):  # strangers fill BOB's box (3 here) with key requests nobody takes
        post_mail(relay, addr(BOB), {"kind": "key_request", "request": {"n": 1}}, os.urandom(32))
    with pytest.raises(KeyRefused, match="waits for this reply"):  # only the asked seller answers
        post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "ab" * 8, "n": 0}, EVE)
    post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "ab" * 8, "n": 1}, ALICE)
    with pytest.raises(KeyRefused, match="waits for this reply"):  # consumed once
        post_mail(relay, addr(BOB), {"kind": "key_reply", "reply_to": "ab" * 8, "n": 2}, ALICE)
    assert [m["body"]["n"] for m in take_mail(relay, BOB, reply_to=["ab" * 8])] == [1]


def test_a_pending_request_expires_with_the_mail():
    box = Mailbox(ttl_s=0.2)
    box.post("0x" + "a" * 40, "0x" + "b" * 40, {"kind": "key_request", "request": {"nonce": "n1"}})
    time.sleep(0.3)
    with pytest.raises(KeyRefused, match="waits for this reply"):
        box.post("0x" + "b" * 40, "0x" + "a" * 40, {"kind": "key_reply", "reply_to": "n1"})
    assert box._pending == {}
