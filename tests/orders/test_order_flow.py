"""Orders end to end in one process: OrderMarket on the in-memory chain, two transport peers
on 127.0.0.1, the buyer's desk over HTTP. One escrow, signed claims, sealed results sampled
after the commitment, cumulative vouchers redeemed in one batch, the key after payment."""

from __future__ import annotations

import time

import pytest

import tests.orders.workload as workload
from tests.orders.conftest import NTK

JOB = {"frames": workload.FRAMES, "seed": 7}


def post(p, *, shards=2, reward=5 * NTK, deadline_s=3_600, review=600, redeem=600):
    return p.buyer.post(JOB, shards=shards, reward_each_wei=reward, deadline_s=deadline_s, review_window_s=review,
                        redeem_window_s=redeem, inputs={"scene": p.scene})


def test_a_two_shard_order_is_claimed_delivered_sampled_paid_and_unsealed(parties):
    p = parties()
    env = p.env
    before = env.balance(env.payout)
    oid = post(p)
    p.run(lambda: p.buyer.done(oid))
    for shard in (0, 1):
        out = p.buyer.result(oid, shard)
        names = sorted(x.name for x in out.iterdir())
        assert names == [f"frame_{i:03d}.bin" for i in range(workload.FRAMES)]
        digest = workload.input_digest(p.scene)
        assert (out / "frame_002.bin").read_bytes() == workload.frame(7, shard, 2, digest)
    assert env.balance(env.payout) == before + 10 * NTK
    o = env.om.order(oid)
    assert o.paid_shards == [0, 1] and o.escrow_wei == 0
    stages = {k: v["stage"] for k, v in p.miner.shards().items()}
    assert stages == {f"{oid}:0": "paid", f"{oid}:1": "paid"}


def test_a_result_not_computed_from_the_inputs_is_rejected_and_not_paid(parties):
    p = parties(work=workload.cheat)
    env = p.env
    before = env.balance(env.payout)
    oid = post(p, shards=1)
    p.run(lambda: p.buyer.shard_state(oid, 0)["state"] == "rejected")
    st = p.buyer.shard_state(oid, 0)
    assert "does not match its re-computation" in st["reason"]
    p.run(lambda: p.miner.shards()[f"{oid}:0"]["stage"] == "rejected")
    assert env.balance(env.payout) == before
    assert env.om.order(oid).paid_shards == []


def test_the_buyer_refunds_what_nobody_delivered_after_hold_until(parties):
    p = parties(kinds=("train",))  # this miner takes no render orders
    env = p.env
    before = env.balance(env.buyer)
    oid = post(p, shards=2, deadline_s=300, review=60, redeem=60)
    p.buyer.step()
    assert env.balance(env.buyer) == before - 10 * NTK
    env.travel(600)
    events = p.buyer.step()
    assert any("refunded" in e for e in events), events
    assert env.balance(env.buyer) == before and env.om.order(oid).closed


def test_a_silent_buyer_still_pays_through_the_onchain_fallback(parties):
    p = parties(patience_s=900)
    env = p.env
    before = env.balance(env.payout)
    oid = post(p, shards=1)
    stage = lambda: p.miner.shards().get(f"{oid}:0", {}).get("stage")  # noqa: E731
    # the buyer grants and sees the confirmation, then goes silent: it never verifies or pays
    p.run(lambda: stage() in ("running", "committed"))
    for _ in range(100):
        p.miner.step()
        if stage() == "committed":
            break
    p.miner.step()
    assert stage() == "committed", "patience not yet spent: no gas spent yet"
    env.travel(901)
    p.miner.step()
    assert stage() == "submitted", p.miner.shards()[f"{oid}:0"].get("last_error")
    env.travel(700)  # past the review window
    p.miner.step()
    assert stage() == "paid"
    assert env.balance(env.payout) == before + 5 * NTK


def test_a_buyer_back_from_silence_rejects_a_bad_result_the_miner_put_on_chain(parties):
    p = parties(work=workload.cheat, patience_s=900)
    env = p.env
    before = env.balance(env.payout)
    oid = post(p, shards=1)
    stage = lambda: p.miner.shards().get(f"{oid}:0", {}).get("stage")  # noqa: E731
    p.run(lambda: stage() == "running")
    for _ in range(200):  # the buyer is away: only the miner works
        p.miner.step()
        if stage() == "committed":
            break
        time.sleep(0.05)
    env.travel(901)
    p.miner.step()
    assert stage() == "submitted"
    # the buyer comes back within the review window: it checks the result and rejects it on chain
    p.run(lambda: p.buyer.shard_state(oid, 0).get("state") == "rejected", also=None)
    env.travel(700)  # past the review window: nothing to release
    p.miner.step()
    assert stage() == "rejected", p.miner.shards()[f"{oid}:0"]
    assert env.balance(env.payout) == before
    assert env.om.order(oid).paid_shards == []


def test_an_order_below_the_price_floor_waits_and_is_taken_once_it_pays(parties):
    floor = {"why": "below floor: 0.5 NTK/h < floor 1"}
    p = parties(accept=lambda order, doc: floor["why"], retry_s=0)
    oid = post(p, shards=1)
    events = p.miner.step()
    assert any(f"order {oid} not taken for now: below floor" in e for e in events), events
    for _ in range(3):
        p.miner.step()
    assert p.miner.shards() == {}  # nothing claimed while it does not pay
    floor["why"] = None  # the floor came down (or a faster device is free)
    p.run(lambda: p.buyer.done(oid))
    assert p.env.om.order(oid).paid_shards == [0]


def _withholding(answer_demands: bool):
    """A miner that redeems its vouchers but never hands the key over off chain."""
    from app.orders import OrderMiner

    class Withholding(OrderMiner):
        def _release_key(self, sh, events):
            sh.update(stage="paid", paid_ts=time.time())

        def _answer_demands(self, events):
            if answer_demands:
                super()._answer_demands(events)

    return Withholding


def test_a_paid_key_that_never_comes_is_demanded_on_chain_and_revealed_there(parties):
    p = parties(miner_cls=_withholding(True), buyer_kw={"key_demand_s": 0, "chain_look_s": 0})
    oid = post(p, shards=1)
    events = p.run(lambda: p.buyer.done(oid))
    assert any("demanded on chain" in e for e in events) and any("revealed there" in e for e in events), events
    assert (p.buyer.result(oid, 0) / "frame_001.bin").read_bytes() == workload.frame(
        7, 0, 1, workload.input_digest(p.scene))


def test_a_miner_who_keeps_a_paid_key_even_from_the_chain_loses_its_stake(parties):
    p = parties(miner_cls=_withholding(False), buyer_kw={"key_demand_s": 0, "chain_look_s": 0})
    env = p.env
    oid = post(p, shards=1, review=600)
    p.run(lambda: p.buyer.shard_state(oid, 0).get("state") == "key demanded")
    stake_before = env.om.stake(env.miner.address, env.payout.address).active_wei
    buyer_before = env.balance(env.buyer)
    env.travel(602)
    p.run(lambda: p.buyer.shard_state(oid, 0).get("state") == "slashed")
    taken = stake_before - env.om.stake(env.miner.address, env.payout.address).active_wei
    assert taken > 0 and env.balance(env.buyer) == buyer_before + taken


def test_a_confirmed_claim_never_delivered_is_refunded_and_its_stake_slashed(parties):
    def dies(doc, shard, inputs, out):
        raise RuntimeError("the rig lost power")

    p = parties(work=dies)
    env = p.env
    before = env.balance(env.buyer)
    oid = post(p, shards=1, deadline_s=300, review=60, redeem=60)
    p.run(lambda: p.miner.shards().get(f"{oid}:0", {}).get("stage") == "failed")
    stake_before = env.om.stake(env.miner.address, env.payout.address).active_wei
    env.travel(600)
    events = p.buyer.step()
    assert any("refunded" in e for e in events) and any("stake was slashed" in e for e in events), events
    taken = stake_before - env.om.stake(env.miner.address, env.payout.address).active_wei
    assert taken > 0 and env.balance(env.buyer) == before + taken
    assert p.buyer.shard_state(oid, 0)["state"] == "slashed"


def test_a_miner_nobody_can_dial_pushes_its_result_and_relays_keys_through_the_desk(parties):
    """A miner behind NAT: its advertised transport and key service refuse every connection.
    It pushes the sealed result to the buyer's node and answers the buyer's key requests
    (the sample, then the whole key) relayed through the buyer's desk, sealed to the buyer."""
    from dataclasses import replace

    from app.orders.peer import free_port

    p = parties()
    dead = f"127.0.0.1:{free_port('127.0.0.1')}"  # nothing listens there
    node = p.miner.peer.node
    node.config = replace(node.config, advertise=(dead,), key_servers=(dead,))
    oid = post(p, shards=1)
    events = p.run(lambda: p.buyer.done(oid))
    relayed = [e for e in events if "relayed through the buyer's desk" in e]
    assert any("item key(s)" in e for e in relayed) and any("whole key" in e for e in relayed), events
    out = p.buyer.result(oid, 0)
    assert (out / "frame_001.bin").read_bytes() == workload.frame(7, 0, 1, workload.input_digest(p.scene))
    assert p.env.om.order(oid).paid_shards == [0]


def test_a_buyer_cannot_aim_miners_pushes_at_a_third_party(parties):
    import json

    p = parties()
    o = {"desk": "http://127.0.0.1:7000", "spec": json.dumps({"peers": [
        "127.0.0.1:6882", "10.9.9.9:22", "example.org:80", "127.0.0.1:0", "nonsense", 5]})}
    assert p.miner._buyer_peers(o) == ("127.0.0.1:6882",)


def test_inputs_that_are_not_what_the_order_says_are_seen_before_any_claim(parties):
    """A buyer who understates its inputs (more images than it priced): the miner fetches the
    ciphertext before claiming, reads the sealed header, and skips the order, so it never holds
    a claim it could be slashed for; what it fetched is deleted."""
    seen = []

    def check(doc, headers):
        seen.append(sorted(it.name for it in headers["scene"].items))
        return "its inputs hold more than it says" if len(headers["scene"].items) > 0 else None

    p = parties(check_inputs=check)
    oid = post(p, shards=1)
    p.run(lambda: str(oid) in p.miner.state["skipped"])
    assert p.miner.state["skipped"][str(oid)] == "its inputs hold more than it says"
    assert seen == [["scene.json"]] and p.miner.shards() == {}
    assert [t for t in p.miner.peer.node.status().transfers if t.entry.kind == "input"] == []
    assert p.buyer.shard_state(oid, 0)["state"] == "open"


def test_inputs_that_pass_the_check_are_claimed_as_usual(parties):
    p = parties(check_inputs=lambda doc, headers: None)
    oid = post(p, shards=1)
    p.run(lambda: p.buyer.done(oid))
    assert p.env.om.order(oid).paid_shards == [0]


def test_orders_whose_desks_never_answer_cannot_stall_the_miner(parties):
    """A stranger posts orders naming a desk that accepts connections and never answers (or a
    desk that went away): each is asked with a short timeout, a few per pass, then less and less
    often; the miner's passes stay short and an honest order posted after them is still taken."""
    import socket

    from app.orders import discovery as discovery_mod, miner as miner_mod
    from wallet.order_market import OrderTerms

    p = parties()
    env = p.env
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # the kernel completes connections; nobody ever reads or answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        for _ in range(3):
            terms = OrderTerms("render", "0x" + "00" * 32, url, 1, NTK, env.om.chain.latest_timestamp() + 3600, 600, 600,
                               stake_bps=2_000)
            env.om.post_order(env.buyer, terms, approve_wei=NTK)
        old = miner_mod.SPEC_TIMEOUT_S, discovery_mod.MAX_DESKS_PER_PASS
        miner_mod.SPEC_TIMEOUT_S, discovery_mod.MAX_DESKS_PER_PASS = 0.5, 2
        try:
            t0 = time.monotonic()
            p.miner.step()
            first = time.monotonic() - t0
            assert first < 2 * 0.5 + 1.5, f"a pass waited {first:.1f} s on dead desks"
            t0 = time.monotonic()
            for _ in range(3):
                p.miner.step()
            assert time.monotonic() - t0 < 3 * 0.5 + 3, "dead desks asked again at once"
            oid = post(p, shards=1)  # an honest order still goes through
            # the third dead desk waits for its turn (a later pass): run until it was asked too
            p.run(lambda: p.buyer.done(oid) and len(p.miner._desk_fails) == 3)
            assert all(f <= 2 for f in p.miner._desk_fails.values()), p.miner._desk_fails
        finally:
            miner_mod.SPEC_TIMEOUT_S, discovery_mod.MAX_DESKS_PER_PASS = old
    finally:
        silent.close()


def test_a_result_never_served_is_rejected_after_the_buyers_patience(parties):
    """A miner commits a result and then serves nothing (or refuses the sample keys): the buyer
    does not wait for the miner's on-chain fallback to pay it; it rejects the shard."""
    p = parties(buyer_kw={"fetch_give_up_s": 3})
    oid = post(p, shards=1)
    stage = lambda: p.miner.shards().get(f"{oid}:0", {}).get("stage")  # noqa: E731
    p.run(lambda: stage() == "committed" or p.buyer.shard_state(oid, 0).get("state") == "fetching")
    p.miner.peer.node.stop(p.miner.shards()[f"{oid}:0"]["info_hash"])  # the miner stops serving it
    p.miner.peer.keys.close()  # and its key service goes away
    p.run(lambda: p.buyer.shard_state(oid, 0).get("state") == "rejected",
          also=lambda: time.sleep(0.05))
    assert "not delivered within" in p.buyer.shard_state(oid, 0)["reason"]
    assert p.env.om.order(oid).paid_shards == []


def test_a_wrong_key_after_payment_is_no_key_and_does_not_stop_the_buyer(parties):
    """A paid miner sends a key that does not match its commitment: the buyer treats it as no
    key (asks again, then demands it on chain) and keeps serving its other orders."""
    from app.orders.buyer import KeyRefused

    p = parties(miner_cls=_withholding(True))  # paid, key held back: the buyer waits in "paid"
    oid = post(p, shards=1)
    p.run(lambda: p.env.om.order(oid).is_paid(0) and p.buyer.shard_state(oid, 0).get("state") == "paid")
    o = p.buyer._orders[oid]
    with pytest.raises(KeyRefused, match="does not match"):
        p.buyer._open(o, 0, o["shards"]["0"], b"\x01" * 32, [])
    assert p.buyer.shard_state(oid, 0)["state"] == "paid"
    p.buyer.step()  # a pass still runs (before, an OrderError here ended every pass)
    assert p.buyer.shard_state(oid, 0)["state"] == "paid"
