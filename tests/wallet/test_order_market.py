"""Every OrderMarket rule on a real EVM (py-evm): post, claims, vouchers, the silent-buyer
fallback, rejections with evidence, refunds, stakes and slashes, the content-key dispute."""

from __future__ import annotations

from tests.wallet.order_flow import (
    DAY, EVIDENCE, NTK, ack, claim, commit, confirm, grant, post, refused, result, stake, voucher,
)
from web3.logs import DISCARD

from wallet.order_market import OrderTerms, RecordStatus, stake_covers
from wallet.order_messages import Voucher


def test_post_escrows_every_shard_and_counts_for_the_buyer(order_env):
    env = order_env
    before = env.balance(env.buyer)
    oid = post(env, shards=8, reward=3 * NTK)
    assert env.balance(env.buyer) == before - 24 * NTK
    o = env.om.order(oid)
    assert (o.buyer, o.shards, o.signed_shards, o.reward_each_wei, o.paid_bits, o.closed) == (
        env.buyer.address, 8, 8, 3 * NTK, 0, False)
    assert o.escrow_wei == 24 * NTK
    assert o.hold_until == o.deadline + 600 + 600
    (posted,) = env.om.posted_orders()
    assert (posted.order_id, posted.spec_uri, posted.kind, posted.shards) == (oid, "p2p://spec", "render", 8)
    st = env.om.stats(env.buyer.address)
    assert (st.orders_posted, st.shards_posted, st.rejections_made, st.rejection_rate) == (1, 8, 0, 0.0)


def test_bad_terms_are_refused(order_env):
    env = order_env
    for kw, what in (({"shards": 0}, "shards"), ({"shards": 129}, "shards"), ({"signed_shards": 5}, "signedShards"),
                     ({"reward": 0}, "rewardEach"), ({"deadline_in": -5}, "deadline"),
                     ({"deadline_in": 31 * DAY}, "deadline"), ({"review": 0}, "reviewWindow"),
                     ({"review": 8 * DAY}, "reviewWindow"), ({"redeem": 0}, "redeemWindow")):
        args = {"shards": 4, **kw}
        with refused("BadTerms") as e:
            post(env, **args)
        assert what in str(e.value)
    assert env.om.order_count() == 0


def test_happy_path_pays_the_payout_address_with_one_voucher(order_env):
    env = order_env
    oid = post(env, shards=4, reward=10 * NTK)
    for shard in range(4):  # grants and confirmations travel off chain: nothing here costs gas
        assert grant(env, oid, shard).signer(env.om.domain) == env.buyer.address
        assert confirm(env, oid, shard).signer(env.om.domain) == env.miner.address
    key0, miner0 = env.balance(env.payout), env.balance(env.miner)
    (red,) = env.om.redeem(env.miner, [voucher(env, oid, range(4))])  # the mining key sends it
    assert red.paid_wei == 40 * NTK and red.fresh == {(oid, env.payout.address): 0b1111}
    assert env.balance(env.payout) == key0 + 40 * NTK and env.balance(env.miner) == miner0
    assert env.om.order(oid).paid_shards == [0, 1, 2, 3] and env.om.order(oid).escrow_wei == 0
    assert env.om.stats(env.payout.address).shards_paid == 4


def test_cumulative_vouchers_pay_only_what_is_new(order_env):
    env = order_env
    oid = post(env, shards=4, reward=5 * NTK)
    first = voucher(env, oid, [0])
    second = voucher(env, oid, [0, 1, 2])
    assert second.message.covers(first.message) and not first.message.covers(second.message)
    env.om.redeem(env.miner, [first])
    (red,) = env.om.redeem(env.miner, [second])
    assert red.paid_wei == 10 * NTK and red.fresh[(oid, env.payout.address)] == 0b110
    assert env.om.redeemable([first, second]) == []  # nothing left to pay: not worth a transaction


def test_one_transaction_redeems_many_orders_and_payees(order_env):
    env = order_env
    orders = [post(env, shards=2, reward=NTK) for _ in range(3)]
    vs = [voucher(env, o, [0, 1]) for o in orders] + [voucher(env, orders[0], [0], payee=env.stranger)]
    other0 = env.balance(env.stranger)
    (red,) = env.om.redeem(env.stranger, vs)
    assert len(red.fresh) == 3 and red.paid_wei == 6 * NTK  # the stranger's voucher names shards paid already
    assert env.balance(env.stranger) == other0
    assert [env.om.order(o).escrow_wei for o in orders] == [0, 0, 0]


def test_onchain_claim_is_exclusive_and_needs_stake(order_env):
    env = order_env
    oid = post(env, shards=4, signed_shards=2, stake=3 * NTK)
    with refused("StakeTooLow"):
        env.om.claim_onchain(env.miner, oid, 2, env.payout.address)
    stake(env, 3 * NTK)
    with refused("BadShard"):  # the signed part is claimed only with the buyer's grant
        env.om.claim_onchain(env.miner, oid, 1, env.payout.address)
    env.om.claim_onchain(env.miner, oid, 2, env.payout.address)
    assert env.om.onchain_claimant(oid, 2, env.miner.address, env.payout.address)
    stake(env, 3 * NTK, miner=env.miner2)
    with refused("ShardTaken"):
        env.om.claim_onchain(env.miner2, oid, 2, env.payout.address)
    with refused("NotMiner"):
        env.om.claim_onchain(env.buyer, oid, 3, env.buyer.address)
    with refused("BadShard"):
        env.om.claim_onchain(env.miner, oid, 4, env.payout.address)
    env.travel(3_700)
    with refused("DeadlinePassed"):
        env.om.claim_onchain(env.miner2, oid, 3, env.payout.address)


def test_silent_buyer_fallback_pays_after_the_review_window_against_the_key(order_env):
    env = order_env
    oid = post(env, shards=2, reward=7 * NTK, review=600)
    res = result()
    g = grant(env, oid, 1)
    env.om.submit_result(env.miner, g, res[0], res[2])
    rec = env.om.record(oid, 1, env.miner.address)
    assert rec.status == RecordStatus.SUBMITTED and rec.status_name == "submitted"
    c = claim(env, oid, 1)
    with refused("TooEarly"):
        env.om.release(env.stranger, c, res[0], res[1])
    env.travel(700)
    with refused("CommitMismatch"):  # the key must be the committed one
        env.om.release(env.stranger, c, res[0], b"\x07" * 32)
    before = env.balance(env.payout)
    tx = env.om.release(env.stranger, c, res[0], res[1])  # anyone may send it: the money goes to the payout
    assert env.balance(env.payout) == before + 7 * NTK
    (ev,) = env.om.contract.events.ResultReleased().process_receipt(tx.receipt, errors=DISCARD)
    assert ev["args"]["key"] == res[1]  # the buyer reads the content key from the chain
    assert env.om.order(oid).paid_shards == [1]
    with refused("WrongRecord"):
        env.om.release(env.stranger, c, res[0], res[1])


def test_after_the_deadline_only_an_acknowledged_result_can_be_submitted(order_env):
    env = order_env
    oid = post(env, shards=2, deadline_in=100, review=600, redeem=300)
    res = result()
    env.travel(200)
    with refused("DeadlinePassed"):
        env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2])
    with refused("DeadlinePassed"):  # an ack of another result does not do
        env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2], ack=ack(env, oid, 0, result(2)))
    env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2], ack=ack(env, oid, 0, res))
    o = env.om.order(oid)
    assert o.hold_until >= env.now() + 600 + 300 - 1  # the order waits for this submission's windows
    env.travel(700)
    with refused("TooLate"):
        env.om.submit_result(env.miner, grant(env, oid, 1), res[0], res[2], ack=ack(env, oid, 1, res))
    env.om.release(env.miner, claim(env, oid, 0), res[0], res[1])
    with refused("TooEarly"):
        env.om.refund(env.buyer, oid)


def test_rejection_carries_evidence_is_counted_and_not_paid(order_env):
    env = order_env
    oid = post(env, shards=2, reward=5 * NTK, review=600, redeem=100)
    res = result()
    env.om.submit_result(env.payout, grant(env, oid, 0), res[0], res[2])  # the payout address may send it too
    c = claim(env, oid, 0)
    with refused("NotBuyer"):
        env.om.reject(env.stranger, c, res[0], res[2], EVIDENCE, "p2p://evidence")
    tx = env.om.reject(env.buyer, c, res[0], res[2], EVIDENCE, "p2p://evidence")
    (ev,) = env.om.contract.events.ResultRejected().process_receipt(tx.receipt, errors=DISCARD)
    assert (ev["args"]["evidenceHash"].hex(), ev["args"]["evidenceURI"]) == ("ee" * 32, "p2p://evidence")
    assert env.om.stats(env.buyer.address).rejections_made == 1
    assert env.om.stats(env.buyer.address).rejection_rate == 0.5
    assert env.om.stats(env.payout.address).rejections_received == 1
    env.travel(700)
    with refused("WrongRecord"):
        env.om.release(env.miner, c, res[0], res[1])
    env.travel(4_000)
    before = env.balance(env.buyer)
    env.om.refund(env.buyer, oid)
    assert env.balance(env.buyer) == before + 10 * NTK


def test_rejection_after_the_review_window_is_refused(order_env):
    env = order_env
    oid = post(env, shards=1, review=600)
    res = result()
    env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2])
    env.travel(700)
    with refused("TooLate"):
        env.om.reject(env.buyer, claim(env, oid, 0), res[0], res[2], EVIDENCE, "x")


def test_refund_after_partial_delivery_returns_only_the_undelivered_shards(order_env):
    env = order_env
    oid = post(env, shards=5, reward=4 * NTK, deadline_in=1_000, review=600, redeem=600)
    env.om.redeem(env.miner, [voucher(env, oid, [0, 3])])
    with refused("TooEarly"):
        env.om.refund(env.buyer, oid)
    env.travel(2_300)
    with refused("NotBuyer"):
        env.om.refund(env.stranger, oid)
    before = env.balance(env.buyer)
    env.om.refund(env.buyer, oid)
    assert env.balance(env.buyer) == before + 3 * 4 * NTK
    assert env.om.order(oid).closed and env.om.order(oid).escrow_wei == 0
    assert env.om.token.balance_of(env.om.address) == 0
    with refused("OrderIsClosed"):
        env.om.refund(env.buyer, oid)
    with refused("OrderIsClosed"):  # a voucher kept too long is worth nothing once the order closed
        env.om.redeem(env.miner, [voucher(env, oid, [0, 1, 3])])


def test_no_show_miner_is_slashed_to_the_buyer_after_the_order_windows(order_env):
    env = order_env
    oid = post(env, shards=2, stake=3 * NTK, deadline_in=1_000, review=600, redeem=600)
    stake(env, 5 * NTK)
    confirmed = confirm(env, oid, 0)
    with refused("TooEarly"):
        env.om.slash(env.buyer, confirmed)
    env.travel(2_300)
    with refused("BadSignature"):  # the buyer's own grant is no proof that the miner took the shard
        env.om.slash(env.buyer, grant(env, oid, 0))
    with refused("NotBuyer"):
        env.om.slash(env.stranger, confirmed)
    before = env.balance(env.buyer)
    env.om.slash(env.buyer, confirmed)
    assert env.balance(env.buyer) == before + 3 * NTK
    assert env.om.stake(env.miner.address, env.payout.address).active_wei == 2 * NTK
    assert env.om.stats(env.payout.address).slashes == 1
    with refused("WrongRecord"):
        env.om.slash(env.buyer, confirmed)


def test_paid_or_rejected_shards_are_never_slashed(order_env):
    env = order_env
    oid = post(env, shards=2, stake=NTK, deadline_in=1_000, review=300, redeem=300)
    stake(env, 5 * NTK)
    env.om.redeem(env.miner, [voucher(env, oid, [0])])
    res = result()
    env.om.submit_result(env.miner, grant(env, oid, 1), res[0], res[2])
    env.om.reject(env.buyer, claim(env, oid, 1), res[0], res[2], EVIDENCE, "x")
    env.travel(3_000)
    with refused("ShardPaid"):
        env.om.slash(env.buyer, confirm(env, oid, 0))
    with refused("WrongRecord"):
        env.om.slash(env.buyer, confirm(env, oid, 1))
    assert env.om.stake(env.miner.address, env.payout.address).active_wei == 5 * NTK


def test_a_result_submitted_but_never_released_is_slashable_after_its_windows(order_env):
    env = order_env
    oid = post(env, shards=1, stake=NTK, deadline_in=1_000, review=300, redeem=300)
    stake(env)
    res = result()
    env.om.submit_result(env.miner, grant(env, oid, 0), res[0], res[2])
    env.travel(500)
    with refused("TooEarly"):
        env.om.slash(env.buyer, confirm(env, oid, 0))
    env.travel(2_000)
    env.om.slash(env.buyer, confirm(env, oid, 0))
    assert env.om.record(oid, 0, env.miner.address).status == RecordStatus.SLASHED


def test_onchain_claim_no_show_is_slashed_without_a_signature(order_env):
    env = order_env
    oid = post(env, shards=1, signed_shards=0, stake=2 * NTK, deadline_in=1_000, review=300, redeem=300)
    stake(env, 2 * NTK)
    env.om.claim_onchain(env.miner, oid, 0, env.payout.address)
    env.travel(2_000)
    with refused("BadShard"):  # a claim that is not the on-chain one
        env.om.slash(env.buyer, claim(env, oid, 0, miner=env.miner2))
    env.om.slash(env.buyer, claim(env, oid, 0))
    assert env.om.stake(env.miner.address, env.payout.address).active_wei == 0


def _committed(env, shards=1):
    """An order with 4 NTK stake per claim, the miner staked, and its signed commitment on shard 0."""
    oid = post(env, shards=shards, stake=4 * NTK, review=600)
    stake(env, 10 * NTK)
    res = result()
    return oid, res, commit(env, oid, 0, res)


def test_key_withheld_after_payment_costs_the_stake(order_env):
    env = order_env
    oid, res, signed_commit = _committed(env, shards=2)
    with refused("BadShard"):  # no demand before the shard is paid
        env.om.demand_key(env.buyer, signed_commit)
    env.om.redeem(env.miner, [voucher(env, oid, [0])])
    env.om.demand_key(env.buyer, signed_commit)
    with refused("TooEarly"):
        env.om.slash_for_key(env.buyer, signed_commit.message)
    env.travel(700)
    before = env.balance(env.buyer)
    env.om.slash_for_key(env.buyer, signed_commit.message)
    assert env.balance(env.buyer) == before + 4 * NTK


def test_key_revealed_on_demand_ends_the_dispute(order_env):
    env = order_env
    oid, res, signed_commit = _committed(env)
    env.om.redeem(env.miner, [voucher(env, oid, [0])])
    env.om.demand_key(env.buyer, signed_commit)
    with refused("CommitMismatch"):
        env.om.reveal_key(env.miner, signed_commit.message, b"\x01" * 32)
    tx = env.om.reveal_key(env.miner, signed_commit.message, res[1])
    (ev,) = env.om.contract.events.KeyRevealed().process_receipt(tx.receipt, errors=DISCARD)
    assert ev["args"]["key"] == res[1]
    env.travel(700)
    with refused("WrongRecord"):
        env.om.slash_for_key(env.buyer, signed_commit.message)


def test_key_demand_for_a_shard_paid_to_someone_else_is_voided(order_env):
    env = order_env
    oid, res, signed_commit = _committed(env)
    other = voucher(env, oid, [0], payee=env.stranger)  # the buyer paid the shard to another payee
    env.om.redeem(env.stranger, [other])
    env.om.demand_key(env.buyer, signed_commit)
    with refused("BadShard"):  # the miner's own voucher is no answer
        env.om.answer_demand(env.miner, signed_commit.message, other_voucher=voucher(env, oid, [0]))
    env.om.answer_demand(env.miner, signed_commit.message, other_voucher=other)
    assert env.om.record(oid, 0, env.miner.address).status == RecordStatus.DEMAND_VOIDED
    env.travel(700)
    with refused("WrongRecord"):
        env.om.slash_for_key(env.buyer, signed_commit.message)


def test_stake_unbonds_and_stays_slashable_while_it_does(order_env):
    env = order_env
    stake(env, 6 * NTK)
    with refused("NothingToWithdraw"):
        env.om.withdraw_stake(env.payout, env.miner.address)
    env.om.request_unstake(env.payout, env.miner.address, 6 * NTK)
    s = env.om.stake(env.miner.address, env.payout.address)
    assert (s.active_wei, s.withdrawing_wei) == (0, 6 * NTK)
    assert s.unlock_at == env.now() + env.om.unbond_delay_s()
    with refused("TooEarly"):
        env.om.withdraw_stake(env.payout, env.miner.address)
    with refused("StakeTooLow"):  # only the payout owns (and withdraws) the stake
        env.om.request_unstake(env.miner, env.miner.address, NTK)
    before = env.balance(env.payout)
    env.travel(env.om.unbond_delay_s() + 1)
    env.om.withdraw_stake(env.payout, env.miner.address)
    assert env.balance(env.payout) == before + 6 * NTK


def test_slash_reaches_stake_being_withdrawn(order_env):
    env = order_env
    oid = post(env, shards=1, stake=3 * NTK, deadline_in=1_000, review=300, redeem=300)
    stake(env, 2 * NTK)
    confirmed = confirm(env, oid, 0)
    env.om.request_unstake(env.payout, env.miner.address, NTK)
    env.travel(2_000)
    env.om.slash(env.buyer, confirmed)  # 3 NTK wanted: 1 active + 1 withdrawing is all there is
    s = env.om.stake(env.miner.address, env.payout.address)
    assert (s.active_wei, s.withdrawing_wei) == (0, 0)


def test_stake_covers_checks_amount_and_unbonding(order_env):
    env = order_env
    oid = post(env, shards=4, stake=2 * NTK, deadline_in=DAY, review=3_600, redeem=3_600)
    o = env.om.order(oid)
    delay = env.om.unbond_delay_s()
    stake(env, 4 * NTK)
    s = env.om.stake(env.miner.address, env.payout.address)
    now = env.now()
    assert stake_covers(s, o, now=now, unbond_delay_s=delay, outstanding_claims=1)
    assert not stake_covers(s, o, now=now, unbond_delay_s=delay, outstanding_claims=2)
    assert not stake_covers(s, o, now=now, unbond_delay_s=3_600, outstanding_claims=0)


def test_terms_escrow_is_reward_times_shards():
    t = OrderTerms("train", "0x" + "00" * 32, "u", 7, 3 * NTK, 10, 1, 1, stake_bps=2_500)
    assert t.escrow_wei == 21 * NTK and t.as_tuple()[4] == 7 and t.stake_each_wei == 3 * NTK // 4
    assert Voucher.of(1, "0x" + "11" * 20, [0, 2]).shard_list() == [0, 2]
