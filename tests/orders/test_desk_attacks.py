"""Hostile strangers against the buyer's order desk (app/orders/desk.py), over real HTTP on
127.0.0.1: forged, replayed, cross-order, cross-chain and malleated signatures; bodies that are
too big, have no length, never end or nest too deep; a commit whose reference names other
bytes; floods of requests and of connections; confirmations, commitments and key relays
from keys the buyer granted nothing; claims from fresh keys by the dozen and from one address.
Each refusal is a one-line 4xx/503, nothing is queued for the buyer's chain thread, and the
desk keeps serving well-behaved miners."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time

import pytest
from eth_account import Account

from app.orders.desk import (MAX_BODY_BYTES, MAX_CLAIMS, MAX_CLAIMS_PER_IP, MAX_CONNECTIONS_PER_IP, MAX_INBOX,
                             MAX_PER_MINER, MAX_REFUSALS,
                             DeskClient, DeskError, OrderDesk, source_of)
from jobs.transport.ref import ContentRef
from jobs.transport.crypto import sign_request
from wallet.order_messages import SECP256K1_N, Claim, ClaimRequest, Domain, ResultCommit, Signed

OURS = {7, 8}
DOMAIN = Domain(chain_id=31337, contract="0x" + "11" * 20)
MINER = Account.from_key(b"\x01" * 32)
PAYOUT = Account.from_key(b"\x02" * 32)
STRANGER = Account.from_key(b"\x03" * 32)
SPEC = b'{"kind": "render", "frames": 4}'
GRANTED = {(7, 0, MINER.address.lower())}  # (order, shard, mining key) the test buyer granted


@pytest.fixture
def desk():
    made: list[OrderDesk] = []

    def make(granted=GRANTED, **kw) -> OrderDesk:
        d = OrderDesk(("127.0.0.1", 0), domain=DOMAIN, spec_of=lambda oid: SPEC if oid in OURS else None,
                      is_ours=lambda oid: oid in OURS, is_party=lambda o, s, m: (o, s, m) in granted, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def request(order=7, shard=0, miner=MINER.address, expires=2_000_000_000) -> ClaimRequest:
    return ClaimRequest(order_id=order, shard=shard, miner=miner, payout=PAYOUT.address, expires_at=expires)


def commit(order=7, shard=0, result=b"\xab" * 32) -> ResultCommit:
    return ResultCommit(order_id=order, shard=shard, miner=MINER.address, payout=PAYOUT.address, result_hash=result,
                        result_key_hash=b"\xcd" * 32)


def post(d: OrderDesk, route: str, body, *, raw: bytes | None = None, headers: dict | None = None,
         source: str | None = None) -> tuple[int, dict]:
    """One POST (from the loopback address `source`, 127.0.0.0/8); (status, decoded reply)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10, source_address=(source, 0) if source else None)
    data = raw if raw is not None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", "Content-Length": str(len(data))} if headers is None else headers
    c.request("POST", route, body=data, headers=h)
    r = c.getresponse()
    out = r.status, json.loads(r.read() or b"{}")
    c.close()
    return out


def send(d: OrderDesk, route: str, field: str, signed: Signed, *, source: str | None = None,
         **extra) -> tuple[int, dict]:
    return post(d, f"/v1/{route}", {field: signed.to_json(), **extra}, source=source)


def healthy(d: OrderDesk) -> bool:
    """A well-behaved miner's round trip still works."""
    return DeskClient(d.url, timeout_s=5).spec(7) == SPEC


# --- signatures -----------------------------------------------------------------------------

def test_a_claim_request_signed_by_its_miner_is_queued_once_however_often_it_is_replayed(desk):
    d = desk()
    good = request().sign(MINER, DOMAIN)
    for _ in range(5):
        assert send(d, "claim", "request", good)[0] == 202
    got = d.take()
    assert [(m.kind, m.signed) for m in got] == [("claim", good)]
    assert send(d, "claim", "request", good)[0] == 202  # after the buyer took it, it is news again
    assert len(d.take()) == 1


def test_a_claim_naming_a_miner_but_signed_by_a_stranger_is_refused(desk):
    d = desk()
    forged = request().sign(STRANGER, DOMAIN)
    code, reply = send(d, "claim", "request", forged)
    assert code == 400 and "signed by" in reply["error"] and "\n" not in reply["error"]
    assert d.take() == []


def test_a_signature_moved_to_another_order_or_shard_is_refused(desk):
    d = desk()
    signed = request(order=7, shard=0).sign(MINER, DOMAIN)
    for field, value in (("orderId", 8), ("shard", 1), ("payout", STRANGER.address)):
        doc = signed.to_json()
        doc["message"][field] = value
        code, reply = post(d, "/v1/claim", {"request": doc})
        assert code == 400, (field, reply)
    assert d.take() == []


@pytest.mark.parametrize("other", [Domain(chain_id=1, contract=DOMAIN.contract),
                                   Domain(chain_id=DOMAIN.chain_id, contract="0x" + "22" * 20)],
                         ids=["other-chain", "other-deployment"])
def test_a_message_signed_for_another_chain_or_deployment_is_refused(desk, other):
    d = desk()
    for route, field, signed in (("claim", "request", request().sign(MINER, other)),
                                 ("confirm", "confirm",
                                  Claim(7, 0, MINER.address, PAYOUT.address).sign(MINER, other)),
                                 ("commit", "commit", commit().sign(MINER, other))):
        extra = {"ref": ContentRef("ab" * 32).uri()} if route == "commit" else {}
        code, reply = send(d, route, field, signed, **extra)
        assert code == 400 and "signed by" in reply["error"], (route, reply)
    assert d.take() == []


def test_a_malleated_high_s_signature_is_refused(desk):
    d = desk()
    good = request().sign(MINER, DOMAIN)
    r, s, v = good.signature[:32], int.from_bytes(good.signature[32:64], "big"), good.signature[64]
    twin = Signed(good.message, r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]))
    code, reply = send(d, "claim", "request", twin)
    assert code == 400 and "malleated" in reply["error"]
    assert d.take() == []


def keys_relay(signer, *, order=7, shard=0, miner=MINER.address, nonce="ab" * 8, **extra) -> dict:
    body = {"op": "keys", "order_id": order, "shard": shard, "miner": miner.lower(), "request_nonce": nonce,
            "reply": {"ok": True, "envelope": "00" * 40}, "ts": int(time.time()), "nonce": os.urandom(8).hex(), **extra}
    return sign_request(signer.key, body)


def test_confirm_and_relayed_keys_must_come_from_the_mining_key_they_name(desk):
    d = desk()
    assert send(d, "confirm", "confirm", Claim(7, 0, MINER.address, PAYOUT.address).sign(PAYOUT, DOMAIN))[0] == 400
    assert post(d, "/v1/keys", {"keys": keys_relay(STRANGER)})[0] == 400  # names MINER, signed by another
    forged = keys_relay(MINER)
    forged["request_nonce"] = "cd" * 8  # changed after signing
    assert post(d, "/v1/keys", {"keys": forged})[0] == 400
    assert post(d, "/v1/keys", {"keys": keys_relay(MINER, order=99)})[0] == 404
    assert post(d, "/v1/keys", {"keys": {**keys_relay(MINER), "reply": "not an object"}})[0] == 400
    assert send(d, "confirm", "confirm", Claim(7, 0, MINER.address, PAYOUT.address).sign(MINER, DOMAIN))[0] == 202
    good = keys_relay(MINER)
    assert post(d, "/v1/keys", {"keys": good})[0] == 202
    assert post(d, "/v1/keys", {"keys": good})[0] == 202  # the same relay again: queued once
    got = d.take()
    assert [m.kind for m in got] == ["confirm", "keys"]
    assert got[1].miner == MINER.address.lower() and got[1].doc["request_nonce"] == "ab" * 8


def test_a_message_for_an_order_not_at_this_desk_is_refused(desk):
    d = desk()
    code, reply = send(d, "claim", "request", request(order=99).sign(MINER, DOMAIN))
    assert code == 404 and "not at this desk" in reply["error"]
    code, _ = send(d, "claim", "request", request().sign(MINER, DOMAIN).__class__(commit(), b"\x00" * 65))
    assert code == 400  # a ResultCommit posted as a claim request
    assert d.take() == []


def test_a_commit_whose_reference_names_other_bytes_is_refused(desk):
    d = desk()
    signed = commit(result=b"\xab" * 32).sign(MINER, DOMAIN)
    for ref in (ContentRef("ef" * 32, peers=("127.0.0.1:6881",)).uri(), "", "magnet:?xt=urn:btih:" + "ab" * 20,
                "http://127.0.0.1/x", "magnet:?xt=urn:btmh:1220" + "AB" * 32 + "&x.pe=" + "a" * 5000):
        code, reply = send(d, "commit", "commit", signed, ref=ref)
        assert code == 400, (ref[:60], reply)
    assert d.take() == []
    ok = ContentRef("ab" * 32, peers=("127.0.0.1:6881",)).uri()
    assert send(d, "commit", "commit", signed, ref=ok)[0] == 202
    (got,) = d.take()
    assert got.kind == "commit" and got.ref == ok


# --- bodies ---------------------------------------------------------------------------------

def test_oversized_missing_or_lying_content_lengths_get_one_line_refusals(desk):
    d = desk()
    body = json.dumps({"request": request().sign(MINER, DOMAIN).to_json()}).encode()
    for head in (b"", b"Transfer-Encoding: chunked\r\n"):  # no length: nothing is read, nothing queued
        s = _stall(d.port, b"POST /v1/claim HTTP/1.1\r\nHost: x\r\n" + head + b"\r\n" + body)
        reply = _read_all(s)
        assert reply.startswith(b"HTTP/1.0 411 ") and b"Content-Length is required" in reply, reply[:80]
    for length in ("-5", "0", str(MAX_BODY_BYTES + 1), "9" * 5000, "twelve"):
        code, reply = post(d, "/v1/claim", None, raw=b"", headers={"Content-Length": length})
        assert code in (411, 413), (length, code)
        assert "\n" not in reply["error"]
    big = b'{"request": "' + b"x" * (MAX_BODY_BYTES + 100) + b'"}'
    assert post(d, "/v1/claim", None, raw=big)[0] == 413
    assert d.take() == [] and healthy(d)


def test_deep_nesting_and_junk_json_are_refused_without_recursion(desk):
    d = desk()
    for raw in (b"[" * 8000 + b"]" * 8000, b'{"request": ' + b'{"a": ' * 50 + b"1" + b"}" * 51, b"\xff\xfe{",
                b'{"request": 1, "request": 2}', b"[1, NaN]", b'"just a string"', b"{" * 10_000):
        code, reply = post(d, "/v1/claim", None, raw=raw[:MAX_BODY_BYTES])
        assert code == 400, (raw[:30], code, reply)
    code, reply = post(d, "/v1/status", {"order_id": "9" * 5000, "shard": 0, "miner": "x"})
    assert code == 400
    assert d.take() == [] and healthy(d)


# --- time and volume ------------------------------------------------------------------------

def _stall(port: int, prefix: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(prefix)
    return s


def _read_all(s: socket.socket) -> bytes:
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    s.close()
    return out


def _closed_by_peer(s: socket.socket, within_s: float) -> bool:
    s.settimeout(within_s)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except (TimeoutError, socket.timeout):
        return False
    except OSError:  # reset
        return True


def test_a_body_that_never_ends_times_out_while_others_are_served(desk):
    d = desk(io_timeout_s=0.6, request_deadline_s=1.5)
    s = _stall(d.port, b"POST /v1/claim HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"request\": ")
    t0 = time.monotonic()
    assert healthy(d)  # served while the stranger holds its connection
    assert send(d, "claim", "request", request().sign(MINER, DOMAIN))[0] == 202
    assert _closed_by_peer(s, 5)
    assert time.monotonic() - t0 < 3
    s.close()


def test_a_slowloris_trickling_headers_is_cut_at_the_request_deadline(desk):
    d = desk(io_timeout_s=5, request_deadline_s=1.0)
    s = _stall(d.port, b"POST /v1/claim HTTP/1.1\r\n")
    t0 = time.monotonic()
    cut = False
    while time.monotonic() - t0 < 4:  # one header byte every 0.1 s: the per-read timeout never fires
        try:
            s.sendall(b"X")
        except OSError:
            cut = True
            break
        time.sleep(0.1)
    cut = cut or _closed_by_peer(s, 1)
    assert cut and time.monotonic() - t0 < 3.5
    s.close()
    assert healthy(d)
    deadline = time.monotonic() + 2
    while d.open_connections and time.monotonic() < deadline:  # the handler threads finish
        time.sleep(0.02)
    assert d.open_connections == 0


def test_a_flood_of_idle_connections_is_bounded_and_served_again_after_the_deadline(desk):
    d = desk(io_timeout_s=10, request_deadline_s=1.5, max_connections=32)
    base_threads = threading.active_count()
    socks = [_stall(d.port, b"POST /v1/claim HTTP/1.1\r\n") for _ in range(120)]
    time.sleep(0.3)
    assert d.open_connections <= 32
    assert threading.active_count() - base_threads <= 32 + 2
    try:  # a miner arriving now is told the desk is busy at once, or served; it never hangs
        t0 = time.monotonic()
        DeskClient(d.url, timeout_s=5).spec(7)
    except DeskError as e:
        assert "503" in str(e) or "reset" in str(e).lower() or "closed" in str(e).lower(), e
    assert time.monotonic() - t0 < 3
    time.sleep(2.0)  # the stalled ones pass their deadline
    assert healthy(d)
    for s in socks:
        s.close()


def test_one_address_cannot_hold_every_connection(desk):
    """Idle connections from 127.0.0.2 stop at the per-address cap (MAX_CONNECTIONS_PER_IP, 8:
    a few addresses cannot hold every place); a miner at another address is served at once,
    and the stalled address gets a 503, not a hang."""
    d = desk(io_timeout_s=10, request_deadline_s=3)
    socks = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10, source_address=("127.0.0.2", 0))
        s.sendall(b"POST /v1/claim HTTP/1.1\r\n")
        socks.append(s)
    time.sleep(0.3)
    assert d.open_connections <= MAX_CONNECTIONS_PER_IP <= 8
    t0 = time.monotonic()
    assert healthy(d) and time.monotonic() - t0 < 1  # from 127.0.0.1
    extra = socket.create_connection(("127.0.0.1", d.port), timeout=5, source_address=("127.0.0.2", 0))
    extra.sendall(b"GET /v1/orders/7 HTTP/1.0\r\n\r\n")
    assert _read_all(extra).startswith(b"HTTP/1.0 503 ")
    for s in socks:
        s.close()


def _post_raw(d: OrderDesk, body: bytes, source: str | None = None) -> int:
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10, source_address=(source, 0) if source else None)
    c.request("POST", "/v1/claim", body=body, headers={"Content-Length": str(len(body))})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def test_one_mining_key_cannot_crowd_the_others_out(desk):
    d = desk()
    codes = [send(d, "claim", "request", request(shard=i % 128, expires=2_000_000_000 + i).sign(MINER, DOMAIN))[0]
             for i in range(MAX_PER_MINER + 5)]
    assert codes.count(202) == MAX_PER_MINER and set(codes[MAX_PER_MINER:]) == {503}
    other = Account.from_key(b"\x04" * 32)
    assert send(d, "claim", "request", request(miner=other.address).sign(other, DOMAIN))[0] == 202
    assert len(d.take()) == MAX_PER_MINER + 1


def fresh_keys(n: int, tag: int = 9) -> list:
    return [Account.from_key(bytes([tag, k + 1]) + b"\x00" * 30) for k in range(n)]


def claim_flood(keys: list, count: int, *, order: int = 7, sources: int = 15,
                domain: Domain = DOMAIN) -> list[tuple[str, bytes]]:
    """`count` distinct, validly signed first claims spread over `keys` and over the loopback
    addresses 127.0.0.2.. (`sources` of them): (source address, body)."""
    out = []
    for i in range(count):
        key = keys[i % len(keys)]
        msg = request(order=order, shard=i % 128, miner=key.address, expires=2_000_000_000 + i)
        out.append((f"127.0.0.{2 + i % sources}", json.dumps({"request": msg.sign(key, domain).to_json()}).encode()))
    return out


def test_a_flood_of_claims_from_fresh_keys_fills_only_the_claims_share(desk):
    """50 fresh keys over 15 addresses: claims stop at MAX_CLAIMS (half the inbox); the granted
    miner's confirmation and commitment still get in, up to its own MAX_PER_MINER."""
    d = desk()
    rss0 = _rss_bytes()
    flood = claim_flood(fresh_keys(50), MAX_INBOX + 40)
    codes = [_post_raw(d, body, src) for src, body in flood]
    assert codes.count(202) == MAX_CLAIMS and set(codes[MAX_CLAIMS:]) == {503}
    assert send(d, "confirm", "confirm", Claim(7, 0, MINER.address, PAYOUT.address).sign(MINER, DOMAIN))[0] == 202
    ref = ContentRef("ab" * 32, peers=("127.0.0.1:6881",)).uri()
    commits = [send(d, "commit", "commit", commit(result=b"\xab" * 32).sign(MINER, DOMAIN), ref=ref)[0]]
    for i in range(MAX_PER_MINER):  # a party's own bound still holds
        c = commit(result=bytes([i]) * 32).sign(MINER, DOMAIN)
        commits.append(send(d, "commit", "commit", c, ref=ContentRef(bytes([i]).hex() * 32).uri())[0])
    assert commits.count(202) == MAX_PER_MINER - 1 and commits[0] == 202 and set(commits[MAX_PER_MINER - 1:]) == {503}
    assert d.waiting() == {"claim": MAX_CLAIMS, "confirm": 1, "commit": MAX_PER_MINER - 1}
    assert _rss_bytes() - rss0 < 64 << 20
    assert len(d.take()) == MAX_CLAIMS + MAX_PER_MINER
    assert send(d, "claim", "request", request(shard=1).sign(MINER, DOMAIN))[0] == 202  # room again


def test_a_claim_flood_from_50_fresh_keys_does_not_keep_a_granted_miners_commit_out(parties):
    """The real buyer and miner on the in-memory chain: once the miner holds its grant, 50 fresh
    keys over 15 addresses fill the claims' share of the desk while the buyer is away; the
    miner's commitment is still queued at once (not a 503), strangers' commitments are 403, and
    with the flood going on the whole time the order is sampled, paid and unsealed."""
    import tests.orders.workload as workload
    from tests.orders.conftest import NTK

    p = parties()
    oid = p.buyer.post({"frames": workload.FRAMES, "seed": 7}, shards=1, reward_each_wei=5 * NTK, deadline_s=3_600,
                       review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})
    p.run(lambda: p.buyer.shard_state(oid, 0).get("state") == "confirmed")
    d, domain = p.buyer.desk, p.env.om.domain
    flood = claim_flood(fresh_keys(50, tag=8), MAX_INBOX + 50, order=oid, domain=domain)
    codes = [_post_raw(d, body, src) for src, body in flood]  # the buyer is not stepping: nothing is taken
    assert codes.count(202) == MAX_CLAIMS and set(codes[MAX_CLAIMS:]) == {503}
    stranger = fresh_keys(1, tag=7)[0]
    forged = ResultCommit(oid, 0, stranger.address, stranger.address, b"\xab" * 32, b"\xcd" * 32).sign(stranger, domain)
    code, reply = send(d, "commit", "commit", forged, ref=ContentRef("ab" * 32).uri(), source="127.0.0.5")
    assert code == 403 and "holds no grant" in reply["error"]
    k = f"{oid}:0"
    for _ in range(400):  # the miner alone: it runs the shard and commits
        p.miner.step()
        if p.miner.shards()[k]["stage"] == "committed":
            break
        time.sleep(0.05)
    assert p.miner.shards()[k]["stage"] == "committed" and not p.miner.shards()[k].get("last_error")
    assert d.waiting() == {"claim": MAX_CLAIMS, "commit": 1}
    events = p.buyer.step()  # the commitment handled first, not behind the strangers' claims
    assert "result committed" in events[0] and sum("claim" in e for e in events) <= 3, events

    stop, refilled = threading.Event(), []

    def keep_flooding() -> None:
        while not stop.is_set():
            for src, body in flood:
                if stop.is_set():
                    return
                try:
                    refilled.append(_post_raw(d, body, src))
                except OSError:
                    pass

    t = threading.Thread(target=keep_flooding, daemon=True)
    t.start()
    try:
        p.run(lambda: p.buyer.done(oid))
    finally:
        stop.set()
        t.join(15)
    assert p.env.om.order(oid).paid_shards == [0]
    out = p.buyer.result(oid, 0)
    assert (out / "frame_001.bin").read_bytes() == workload.frame(7, 0, 1, workload.input_digest(p.scene))
    assert refilled.count(202) > 100  # the flood went on meanwhile, refilling after each pass


def test_strangers_claims_on_free_shards_cannot_hold_the_buyers_chain_thread(parties):
    """500 claims on free shards from 50 fresh, unstaked keys (each would cost chain reads): one
    pass reads at most MAX_CLAIM_CHECKS of them, a miner the buyer granted before is read first
    and granted, and the pass is short; the rest are left for their senders to ask again."""
    from app.orders.claims import MAX_CLAIM_CHECKS
    from tests.orders.conftest import NTK

    p = parties()
    env, domain, d = p.env, p.env.om.domain, p.buyer.desk
    oid = p.buyer.post({"frames": 2, "seed": 7}, shards=64, reward_each_wei=NTK // 100, deadline_s=3_600,
                       review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})

    def honest(shard: int) -> bytes:
        req = ClaimRequest(oid, shard, env.miner.address, env.payout.address, 2_000_000_000)
        return json.dumps({"request": env.om.sign(req, env.miner).to_json()}).encode()

    assert _post_raw(d, honest(0)) == 202
    assert any("shard 0 granted" in e for e in p.buyer.step())  # now a miner this buyer knows
    flood = claim_flood(fresh_keys(50, tag=4), MAX_CLAIMS, order=oid, domain=domain)
    codes = [_post_raw(d, body, src) for src, body in flood[:MAX_CLAIMS // 2]]
    codes.append(_post_raw(d, honest(1)))
    codes += [_post_raw(d, body, src) for src, body in flood[MAX_CLAIMS // 2:]]
    assert codes.count(202) == MAX_CLAIMS  # the last stranger's claim found the share full
    t0 = time.monotonic()
    events = p.buyer.step()
    took = time.monotonic() - t0
    assert any(f"shard 1 granted to {env.miner.address}" in e for e in events), events[:5]
    stake_reads = [v for v in d._refusals.values()  # 248 without the bound
                   if "stake" in v.get("reason", "") and "moment ago" not in v["reason"]]
    assert 0 < len(stake_reads) <= MAX_CLAIM_CHECKS - 1 <= 31, len(stake_reads)
    assert sum("claim" in e for e in events) <= 3 and "more claims refused" in events[-1], events  # not 500 lines
    assert took < 5, f"one pass took {took:.1f} s"
    assert d.waiting() == {}


def test_messages_from_keys_the_buyer_granted_nothing_get_403_and_take_no_room(desk):
    """Only a claim may come first: a confirmation, commitment or key relay from a key without
    the buyer's grant of that shard (validly signed by it) is a one-line 403, never queued."""
    d = desk()
    ref = ContentRef("ab" * 32).uri()
    strangers = fresh_keys(20, tag=5)
    for k in strangers:
        msgs = [("confirm", "confirm", Claim(7, 0, k.address, PAYOUT.address).sign(k, DOMAIN), {}),
                ("commit", "commit", ResultCommit(7, 0, k.address, PAYOUT.address, b"\xab" * 32, b"\xcd" * 32)
                 .sign(k, DOMAIN), {"ref": ref})]
        for route, field, signed, extra in msgs:
            code, reply = send(d, route, field, signed, **extra)
            assert code == 403 and "holds no grant" in reply["error"] and "\n" not in reply["error"], (route, reply)
        code, reply = post(d, "/v1/keys", {"keys": keys_relay(k, miner=k.address)})
        assert code == 403 and "holds no grant" in reply["error"]
    # the granted miner, for a shard it was not granted: refused too
    assert send(d, "confirm", "confirm", Claim(7, 1, MINER.address, PAYOUT.address).sign(MINER, DOMAIN))[0] == 403
    assert send(d, "commit", "commit", commit(shard=1).sign(MINER, DOMAIN), ref=ref)[0] == 403
    assert post(d, "/v1/keys", {"keys": keys_relay(MINER, shard=1)})[0] == 403
    assert d.waiting() == {} and d.take() == []
    # forged: names the granted miner, signed by a stranger: past the grant check, the signature fails
    assert send(d, "commit", "commit", commit().sign(STRANGER, DOMAIN), ref=ref)[0] == 400
    assert send(d, "commit", "commit", commit().sign(MINER, DOMAIN), ref=ref)[0] == 202
    assert [m.kind for m in d.take()] == ["commit"]


def test_one_address_cannot_take_every_claim_place(desk):
    """Claims from one address (many keys) stop at MAX_CLAIMS_PER_IP; another address still
    gets its claims in, and so does the first once the buyer took what waited."""
    d = desk()
    keys = fresh_keys(5, tag=6)
    flood = [body for _src, body in claim_flood(keys, MAX_CLAIMS_PER_IP + 30)]
    codes = [_post_raw(d, body, "127.0.0.2") for body in flood]
    assert codes.count(202) == MAX_CLAIMS_PER_IP and set(codes[MAX_CLAIMS_PER_IP:]) == {503}
    code, reply = post(d, "/v1/claim", {"request": request(shard=3, miner=keys[0].address, expires=2_100_000_000)
                                        .sign(keys[0], DOMAIN).to_json()}, source="127.0.0.2")
    assert code == 503 and "your address" in reply["error"]
    other = Account.from_key(b"\x04" * 32)
    assert send(d, "claim", "request", request(miner=other.address).sign(other, DOMAIN), source="127.0.0.3")[0] == 202
    assert send(d, "claim", "request", request(shard=2).sign(MINER, DOMAIN), source="127.0.1.9")[0] == 202
    assert d.waiting() == {"claim": MAX_CLAIMS_PER_IP + 2}
    d.take()
    assert _post_raw(d, flood[-1], "127.0.0.2") == 202


def test_addresses_are_counted_by_host_and_ipv6_by_its_64():
    assert source_of("127.0.0.2") == "127.0.0.2" != source_of("127.0.0.3")
    assert source_of("::ffff:10.1.2.3") == "10.1.2.3"
    assert source_of("2001:db8:1:2::5") == source_of("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::5") != source_of("2001:db8:1:2::5")
    assert source_of("fe80::1%lo") == "fe80::/64"


def test_refusals_kept_for_strangers_status_are_bounded(desk):
    d = desk()
    d.publish(7, 0, MINER.address, state="granted")
    for i in range(MAX_REFUSALS + 50):
        d.publish(7, 0, "0x" + f"{i:040x}", state="refused", reason="the shard is taken")
    assert len(d._refusals) == MAX_REFUSALS
    client = DeskClient(d.url)
    assert client.status(7, 0, "0x" + f"{MAX_REFUSALS + 49:040x}")["state"] == "refused"
    assert client.status(7, 0, "0x" + f"{0:040x}") == {"state": "unknown"}  # the oldest one forgotten
    d.publish(7, 0, MINER.address, state="refused", reason="the shard is taken")  # a party's answer is kept
    assert client.status(7, 0, MINER.address)["state"] == "refused"


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_status_tells_a_miner_only_what_the_buyer_published_for_it(desk):
    d = desk()
    grant = Claim(7, 0, MINER.address, PAYOUT.address).sign(STRANGER, DOMAIN)
    d.publish(7, 0, MINER.address, state="granted", grant=grant)
    client = DeskClient(d.url)
    got = client.status(7, 0, MINER.address.upper().replace("0X", "0x"))
    assert got["state"] == "granted" and Signed.from_json(got["grant"], expect=Claim) == grant
    assert client.status(7, 0, STRANGER.address) == {"state": "unknown"}
    assert client.status(7, 1, MINER.address) == {"state": "unknown"}


@pytest.mark.parametrize("answer", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99999\r\n\r\n{",
                                    b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000 + b"\r\n\r\n"])
def test_a_hostile_desk_answering_nonsense_is_one_deskerror(answer):
    """The miner's side: a 'desk' that answers a bad status line, a short body or a huge header
    gives a DeskError (the miner skips that order), never another exception."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        c, _ = srv.accept()
        c.recv(65536)
        c.sendall(answer)
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(DeskError):
            DeskClient(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout_s=3).spec(7)
    finally:
        srv.close()


def test_a_desk_that_trickles_its_answer_is_cut_at_the_timeout():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        c, _ = srv.accept()
        c.recv(65536)
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(60):
                c.sendall(b" ")
                time.sleep(0.3)
        except OSError:
            pass
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(DeskError, match="too slow"):
            DeskClient(f"http://127.0.0.1:{srv.getsockname()[1]}", timeout_s=2).spec(7)
        assert time.monotonic() - t0 < 4
    finally:
        srv.close()
