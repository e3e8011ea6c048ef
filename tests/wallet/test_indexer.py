"""Event indexer on a real anvil: range by range, resume, re-org rollback, history queries."""

from __future__ import annotations

from eth_account import Account

from wallet.chain import Chain
from wallet.deploy import deploy_all
from wallet.indexer import for_deployment
from wallet.market import MarketClient

NTK = 10**18


def _setup(anvil, tmp_path):
    chain = Chain.rpc(anvil.url, lock_dir=tmp_path)
    deployer, buyer, miner = (Account.from_key(k) for k in anvil.keys[:3])
    dep = deploy_all(chain, deployer)
    return chain, dep, MarketClient(chain, dep), deployer, buyer, miner


def test_indexer_history_balances_and_resume(anvil, tmp_path):
    chain, dep, m, deployer, buyer, miner = _setup(anvil, tmp_path)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    for i in range(5):
        m.token.transfer(buyer, miner.address, (i + 1) * NTK)
    ids, _ = m.post_shards(buyer, kind="render", spec_hashes=["0x" + f"{i:064x}" for i in range(1, 4)],
                           spec_uris=["a", "b", "c"], reward_each_wei=NTK, deadline=chain.latest_timestamp() + 3600,
                           review_window_s=600)
    m.claim(miner, ids[0])
    m.submit(miner, ids[0], "0x" + "99" * 32, "r")
    m.accept(buyer, ids[0])
    db = tmp_path / "index.sqlite"
    idx = for_deployment(chain, db, dep, step=3)
    first = idx.sync(max_ranges=2)  # stop part way, as if the app closed
    assert first.to_block == dep.block + 5
    idx.close()
    idx = for_deployment(chain, db, dep, step=3)
    rest = idx.sync()
    assert rest.from_block == first.to_block + 1 and rest.to_block == chain.block_number()
    # same events as a single full scan of the chain
    full = for_deployment(chain, tmp_path / "full.sqlite", dep, step=10_000)
    full.sync()
    assert idx.count() == full.count() == first.events_added + rest.events_added
    hist = idx.history(miner.address, names=["Transfer"])
    assert [e.amount_wei for e in hist] == [NTK, 5 * NTK, 4 * NTK, 3 * NTK, 2 * NTK, NTK]  # newest first
    assert all(e.timestamp for e in hist)
    assert [e.name for e in idx.job_events(ids[0])] == ["JobPosted", "JobClaimed", "ResultSubmitted", "JobAccepted"]
    points = idx.balance_history(miner.address, dep.ntk)
    assert [p.balance_wei for p in points] == [NTK * x for x in (1, 3, 6, 10, 15, 16)]
    assert points[-1].balance_wei == m.token.balance_of(miner.address)


def test_reorg_rolls_back_and_reindexes(anvil, tmp_path):
    chain, dep, m, deployer, buyer, miner = _setup(anvil, tmp_path)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    idx = for_deployment(chain, tmp_path / "index.sqlite", dep)
    idx.sync()
    m.token.transfer(buyer, miner.address, 7 * NTK)
    m.token.transfer(buyer, miner.address, 8 * NTK)
    idx.sync()
    assert [e.amount_wei for e in idx.history(miner.address)] == [8 * NTK, 7 * NTK]
    head = chain.block_number()
    chain.w3.provider.make_request("anvil_reorg", [2, []])  # the last two blocks are replaced by empty ones
    assert chain.block_number() == head
    res = idx.sync()
    assert res.rolled_back_to == head - 2
    assert idx.history(miner.address) == []
    assert m.token.balance_of(miner.address) == 0
    m.token.transfer(buyer, miner.address, 9 * NTK)
    idx.sync()
    assert [e.amount_wei for e in idx.history(miner.address)] == [9 * NTK]
    assert idx.balance_history(miner.address, dep.ntk)[-1].balance_wei == 9 * NTK
