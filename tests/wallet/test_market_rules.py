"""Every JobMarket rule on a real EVM (py-evm), including the attacks the issue lists."""

from __future__ import annotations

import pytest

from wallet.errors import ContractRevert, InsufficientFunds
from wallet.market import JobStatus

NTK = 10**18
SPEC = "0x" + "ab" * 32
RESULT = "0x" + "cd" * 32
DAY = 86_400


def post(env, *, reward=10 * NTK, deadline_in=DAY, window=3_600, stake=0, who=None):
    job_id, _ = env.market.post(who or env.buyer, kind="render", spec_hash=SPEC, spec_uri="file:///spec.json",
                                reward_wei=reward, deadline=env.now() + deadline_in, review_window_s=window,
                                stake_wei=stake)
    return job_id


def refused(name: str):
    return pytest.raises(ContractRevert, match=rf"\b{name}\(")


def bal(env, acct) -> int:
    return env.market.token.balance_of(acct.address)


def test_post_escrows_reward_and_records_job(market_env):
    env = market_env
    before = bal(env, env.buyer)
    job_id = post(env, reward=7 * NTK)
    assert bal(env, env.buyer) == before - 7 * NTK
    assert env.market.token.balance_of(env.market.jobs_contract.address) == 7 * NTK
    job = env.market.job(job_id)
    assert (job.status, job.buyer, job.miner, job.kind, job.reward_wei) == (JobStatus.OPEN, env.buyer.address, None, "render", 7 * NTK)
    assert job.spec_hash == SPEC and job.result_hash is None


def test_zero_reward_spam_is_refused(market_env):
    env = market_env
    for _ in range(5):
        with refused("ZeroReward"):
            post(env, reward=0)
    assert env.market.job_count() == 0


def test_bad_terms_are_refused(market_env):
    env = market_env
    with refused("DeadlineInPast"):
        post(env, deadline_in=-10)
    with refused("BadReviewWindow"):
        post(env, window=0)
    with refused("BadReviewWindow"):
        post(env, window=31 * DAY)


def test_full_flow_accept_pays_miner_reward_and_stake(market_env):
    env = market_env
    job_id = post(env, reward=10 * NTK, stake=2 * NTK)
    miner0 = bal(env, env.miner)
    env.market.claim(env.miner, job_id)
    assert bal(env, env.miner) == miner0 - 2 * NTK
    env.market.submit(env.miner, job_id, RESULT, "file:///result")
    job = env.market.job(job_id)
    assert job.status == JobStatus.SUBMITTED and job.result_hash == RESULT and job.result_uri == "file:///result"
    env.market.accept(env.buyer, job_id)
    assert bal(env, env.miner) == miner0 + 10 * NTK
    assert env.market.token.balance_of(env.market.jobs_contract.address) == 0
    rep = env.market.reputation(env.miner.address)
    assert (rep.completed, rep.rejected, rep.expired) == (1, 0, 0)


def test_double_claim_is_refused(market_env):
    env = market_env
    job_id = post(env)
    env.market.claim(env.miner, job_id)
    with refused("WrongStatus"):
        env.market.claim(env.stranger, job_id)
    with refused("WrongStatus"):
        env.market.claim(env.miner, job_id)
    assert env.market.job(job_id).miner == env.miner.address


def test_buyer_cannot_claim_own_job(market_env):
    env = market_env
    with refused("BuyerCannotClaim"):
        env.market.claim(env.buyer, post(env))


def test_claim_after_deadline_is_refused(market_env):
    env = market_env
    job_id = post(env, deadline_in=100)
    env.travel(200)
    with refused("DeadlinePassed"):
        env.market.claim(env.miner, job_id)


def test_submit_by_non_claimer_is_refused(market_env):
    env = market_env
    job_id = post(env)
    with refused("WrongStatus"):  # not claimed yet
        env.market.submit(env.stranger, job_id, RESULT, "x")
    env.market.claim(env.miner, job_id)
    with refused("NotMiner"):
        env.market.submit(env.stranger, job_id, RESULT, "x")
    with refused("NotMiner"):
        env.market.submit(env.buyer, job_id, RESULT, "x")


def test_submit_after_deadline_is_refused(market_env):
    env = market_env
    job_id = post(env, deadline_in=100)
    env.market.claim(env.miner, job_id)
    env.travel(200)
    with refused("DeadlinePassed"):
        env.market.submit(env.miner, job_id, RESULT, "x")


def test_accept_or_reject_by_non_buyer_is_refused(market_env):
    env = market_env
    job_id = post(env)
    env.market.claim(env.miner, job_id)
    env.market.submit(env.miner, job_id, RESULT, "x")
    for who in (env.miner, env.stranger):
        with refused("NotBuyer"):
            env.market.accept(who, job_id)
        with refused("NotBuyer"):
            env.market.reject(who, job_id)
    other = post(env, deadline_in=100)
    env.travel(200)
    with refused("NotBuyer"):  # nobody but the buyer takes the escrow back
        env.market.refund(env.stranger, other)


def test_reject_within_window_refunds_buyer_and_returns_stake(market_env):
    env = market_env
    buyer0, miner0 = bal(env, env.buyer), bal(env, env.miner)
    job_id = post(env, reward=10 * NTK, stake=NTK)
    env.market.claim(env.miner, job_id)
    env.market.submit(env.miner, job_id, RESULT, "x")
    env.market.reject(env.buyer, job_id)
    assert (bal(env, env.buyer), bal(env, env.miner)) == (buyer0, miner0)
    assert env.market.job(job_id).status == JobStatus.REJECTED
    assert env.market.reputation(env.miner.address).rejected == 1
    with refused("WrongStatus"):
        env.market.accept(env.buyer, job_id)


def test_reject_after_window_is_refused_and_miner_releases(market_env):
    env = market_env
    job_id = post(env, window=600)
    env.market.claim(env.miner, job_id)
    env.market.submit(env.miner, job_id, RESULT, "x")
    with refused("ReviewWindowOpen"):  # release before the window
        env.market.release(env.miner, job_id)
    env.travel(700)
    with refused("ReviewWindowClosed"):
        env.market.reject(env.buyer, job_id)
    with refused("NotMiner"):
        env.market.release(env.stranger, job_id)
    miner0 = bal(env, env.miner)
    env.market.release(env.miner, job_id)
    assert bal(env, env.miner) == miner0 + 10 * NTK
    assert env.market.job(job_id).status == JobStatus.RELEASED
    assert env.market.reputation(env.miner.address).completed == 1
    with refused("WrongStatus"):
        env.market.release(env.miner, job_id)


def test_refund_before_deadline_is_refused(market_env):
    env = market_env
    job_id = post(env, deadline_in=1_000)
    with refused("DeadlineNotReached"):
        env.market.refund(env.buyer, job_id)


def test_refund_after_deadline_returns_escrow_and_forfeited_stake(market_env):
    env = market_env
    buyer0 = bal(env, env.buyer)
    open_job = post(env, reward=3 * NTK, deadline_in=100)
    claimed_job = post(env, reward=5 * NTK, deadline_in=100, stake=NTK)
    env.market.claim(env.miner, claimed_job)
    env.travel(200)
    env.market.refund(env.buyer, open_job)
    env.market.refund(env.buyer, claimed_job)
    assert bal(env, env.buyer) == buyer0 + NTK  # both rewards back, plus the no-show miner's stake
    assert env.market.reputation(env.miner.address).expired == 1
    with refused("WrongStatus"):
        env.market.refund(env.buyer, open_job)


def test_refund_of_delivered_job_is_refused(market_env):
    env = market_env
    job_id = post(env, deadline_in=100, window=10_000)
    env.market.claim(env.miner, job_id)
    env.market.submit(env.miner, job_id, RESULT, "x")
    env.travel(200)
    with refused("WrongStatus"):
        env.market.refund(env.buyer, job_id)


def test_post_shards_posts_n_jobs_in_one_transaction(market_env):
    env = market_env
    before = bal(env, env.buyer)
    hashes = ["0x" + f"{i:064x}" for i in range(1, 9)]
    ids, txs = env.market.post_shards(env.buyer, kind="render", spec_hashes=hashes,
                                     spec_uris=[f"file:///shard{i}" for i in range(8)], reward_each_wei=NTK,
                                     deadline=env.now() + DAY, review_window_s=600)
    assert ids == list(range(1, 9)) and len(txs) == 1  # one transaction
    assert bal(env, env.buyer) == before - 8 * NTK
    assert len({env.market.job(i).spec_hash for i in ids}) == 8
    with refused("BadShardCount"):
        env.market.post_shards(env.buyer, kind="render", spec_hashes=[], spec_uris=[], reward_each_wei=NTK,
                               deadline=env.now() + DAY, review_window_s=600)
    with refused("LengthMismatch"):
        env.market.post_shards(env.buyer, kind="render", spec_hashes=hashes[:2], spec_uris=["a"], reward_each_wei=NTK,
                               deadline=env.now() + DAY, review_window_s=600)


def test_many_shards_are_split_into_block_sized_transactions(market_env):
    env = market_env
    n = 130
    ids, txs = env.market.post_shards(env.buyer, kind="render", spec_hashes=["0x" + f"{i + 1:064x}" for i in range(n)],
                                      spec_uris=[f"u{i}" for i in range(n)], reward_each_wei=1, deadline=env.now() + DAY,
                                      review_window_s=600, max_per_tx=100)
    assert ids == list(range(1, n + 1)) and len(txs) == 2
    assert env.market.token.balance_of(env.market.jobs_contract.address) == n
    with refused("BadShardCount"):  # the contract's own cap
        env.chain.transact(env.buyer, env.market.jobs_contract.functions.postShards(
            1, [bytes(32)] * 257, ["u"] * 257, 1, env.now() + DAY, 600, 0), gas=29_000_000)


def test_long_spec_uris_get_the_gas_they_need_and_batches_stay_block_sized(market_env):
    from wallet.market import BATCH_GAS_BUDGET, POST_BASE_GAS, _shard_batches, _shard_gas

    env = market_env
    uris = [f"file:///{'very-long-folder-name/' * 12}shard-{i}.json" for i in range(3)]  # ~290 bytes each
    ids, txs = env.market.post_shards(env.buyer, kind="render", spec_hashes=["0x" + f"{i + 1:064x}" for i in range(3)],
                                      spec_uris=uris, reward_each_wei=1, deadline=env.now() + DAY, review_window_s=600)
    assert len(ids) == 3 and len(txs) == 1
    assert [env.market.job(i).spec_uri for i in ids] == uris
    # 100 shards of 2 KB URIs would not fit one block: batches are cut by gas, not only by count
    long = ["x" * 2048] * 100
    batches = _shard_batches(list(range(100)), long, 100)
    assert len(batches) > 1 and sum(len(h) for h, _ in batches) == 100
    assert all(POST_BASE_GAS + sum(_shard_gas(u) for u in us) <= BATCH_GAS_BUDGET for _, us in batches)


def test_reward_overflow_is_refused(market_env):
    env = market_env
    # N * rewardEach overflows uint256: checked arithmetic reverts instead of wrapping to a tiny escrow
    huge = 2**255
    fn = env.market.jobs_contract.functions.postShards(1, [bytes(32), bytes(32)], ["a", "b"], huge, env.now() + DAY, 600, 0)
    env.market.token.approve(env.buyer, env.market.jobs_contract.address, 2**256 - 1)
    with pytest.raises(ContractRevert, match="arithmetic overflow"):
        env.chain.transact(env.buyer, fn, gas=2_000_000, what="overflowing shards")
    # a reward beyond what the buyer holds cannot be escrowed
    with pytest.raises(InsufficientFunds, match="not enough tokens"):
        post(env, reward=2**256 - 1)
    assert env.market.job_count() == 0


def test_unknown_job_is_reported(market_env):
    with refused("NoSuchJob"):
        market_env.market.job(42)


def test_post_without_tokens_is_a_clear_error(market_env):
    env = market_env
    from eth_account import Account

    poor = Account.create()
    env.chain.transact(env.deployer, to=poor.address, value_wei=10**18, gas=21_000, what="gas money")
    with pytest.raises(InsufficientFunds):
        post(env, who=poor)
