"""Which claims the buyer reads against the chain when strangers flood its desk (the real
OrderBuyer and its desk over HTTP on 127.0.0.0/8, clients bound to several loopback addresses,
the in-memory chain): a key granted once cannot spend every check, a flood from a few networks
cannot keep a newcomer from another network out, and expired claims cost no check."""

from __future__ import annotations

import json
import time

from eth_account import Account

import app.orders.claims as claims_mod
from app.orders.claims import MAX_CHECKS_PER_KEY, MAX_CLAIM_CHECKS
from app.orders.desk import MAX_CLAIMS, DeskClient
from tests.orders.conftest import NTK
from tests.orders.test_desk_attacks import _post_raw
from wallet.order_messages import ClaimRequest

FAR = 2_000_000_000


def _order(p, shards: int = 64) -> int:
    return p.buyer.post({"frames": 2, "seed": 7}, shards=shards, reward_each_wei=NTK // 100, deadline_s=3_600,
                        review_window_s=600, redeem_window_s=600, inputs={"scene": p.scene})


def _claim(env, oid: int, shard: int, key, payout: str, expires: int = FAR) -> bytes:
    req = ClaimRequest(oid, shard, key.address, payout, expires)
    return json.dumps({"request": env.om.sign(req, key).to_json()}).encode()


def _granted(events: list[str], shard: int, miner: str) -> bool:
    return any(f"shard {shard} granted to {miner}" in e for e in events)


def test_a_key_granted_once_cannot_spend_every_claim_check(parties, monkeypatch):
    """miner2 holds one grant and stake for just that one; each pass it sends 64 claims on free
    shards (each would fail the stake check). It spends at most MAX_CHECKS_PER_KEY checks in the
    first pass and none in the next (its refusal is remembered); an honest newcomer's claim
    from another network is granted in the first pass. Once miner2's grant lapses it is no
    longer a known miner (known ones are checked first)."""
    p = parties()
    env, d = p.env, p.buyer.desk
    oid = _order(p)
    env.om.deposit_stake(env.stranger, env.miner2.address, env.om.order(oid).stake_each_wei)  # one claim's worth
    assert _post_raw(d, _claim(env, oid, 0, env.miner2, env.stranger.address), "127.0.3.1") == 202
    assert _granted(p.buyer.step(), 0, env.miner2.address)
    flood = [_claim(env, oid, s, env.miner2, env.stranger.address) for s in range(2, 64)]  # 62 free shards

    def one_pass(newcomer: bytes | None = None) -> tuple[list[str], int]:
        for body in flood:
            assert _post_raw(d, body, "127.0.3.1") == 202
        if newcomer is not None:
            assert _post_raw(d, newcomer, "127.0.4.1") == 202
        events = p.buyer.step()
        return events, MAX_CLAIM_CHECKS - p.buyer._claim_checks

    events, spent = one_pass(_claim(env, oid, 1, env.miner, env.payout.address))
    assert _granted(events, 1, env.miner.address), events[:5]  # without the fix: 16 checks on miner2's claims
    assert spent <= 1 + MAX_CHECKS_PER_KEY, spent
    events, spent = one_pass()
    assert spent == 0, spent  # "stake does not cover" remembered: no chain read for it this pass
    got = DeskClient(d.url).status(oid, 5, env.miner2.address)
    assert got["state"] == "refused" and "stake" in got["reason"], got
    assert p.buyer._known_miners() == {env.miner2.address.lower(), env.miner.address.lower()}
    monkeypatch.setattr(claims_mod, "GRANT_LAPSE_S", 0.3)
    time.sleep(0.4)  # both grants lapse (never confirmed)
    assert p.buyer._known_miners() == set()


def _fresh(n: int, tag: int) -> list:
    return [Account.from_key(bytes([tag, k >> 8, k & 0xFF, 1]) + b"\x00" * 28) for k in range(n)]


def test_a_flood_from_ten_addresses_does_not_keep_a_newcomer_from_another_network_out(parties):
    """10 addresses in 127.0.1.0/24 and 127.0.2.0/24 keep the claims' share of the desk full
    with fresh, unstaked keys (one claim each, posted again after every pass). An honest
    newcomer at 127.0.9.7 still gets its claim queued (it displaces one of the flood's) and
    checked: granted within 2 passes (without the turns by network: about 16 in 500 a pass)."""
    p = parties()
    env, d = p.env, p.buyer.desk
    oid = _order(p)
    sources = [f"127.0.{1 + i // 5}.{1 + i % 5}" for i in range(10)]
    keys = _fresh(MAX_CLAIMS, tag=3)
    flood = [(sources[i % 10], _claim(env, oid, 1 + i % 63, k, k.address)) for i, k in enumerate(keys)]
    honest = _claim(env, oid, 0, env.miner, env.payout.address)
    for n in range(1, 3):
        codes = [_post_raw(d, body, src) for src, body in flood]
        assert codes.count(202) == MAX_CLAIMS, codes.count(202)  # the share is full
        assert _post_raw(d, honest, "127.0.9.7") == 202  # without the fix: 503 (the share is full)
        assert d.waiting() == {"claim": MAX_CLAIMS}
        t0 = time.monotonic()
        events = p.buyer.step()
        assert time.monotonic() - t0 < 5
        if _granted(events, 0, env.miner.address):
            break
    else:
        raise AssertionError("the newcomer was not granted within 2 passes")
    assert n == 1  # in turn by network: the newcomer's network gets a check in the first round


def test_expired_claims_cost_no_check_and_the_chain_time_is_read_once_a_pass(parties, order_env):
    """40 expired claims from 40 fresh keys: all refused in one pass without spending a check,
    the chain's time read once for them all, and an honest claim in the same pass granted."""
    reads = []
    env = order_env
    p2 = parties(buyer_kw={"clock": lambda: reads.append(1) or env.chain.latest_timestamp()})
    d = p2.buyer.desk
    oid = _order(p2)
    now = env.now()
    for i, k in enumerate(_fresh(40, tag=2)):
        assert _post_raw(d, _claim(env, oid, 1 + i, k, k.address, expires=now - 60), f"127.0.5.{1 + i % 10}") == 202
    assert _post_raw(d, _claim(env, oid, 0, env.miner, env.payout.address), "127.0.6.1") == 202
    reads.clear()
    events = p2.buyer.step()
    assert _granted(events, 0, env.miner.address), events[:5]
    assert "38 more claims refused" in events[-1], events[-3:]  # all 40 answered (without the fix: 15)
    assert p2.buyer._claim_checks == MAX_CLAIM_CHECKS - 1
    assert len(reads) <= 2, len(reads)  # once for the claims (+ the refund look of the one order)
