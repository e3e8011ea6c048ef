"""Payments from a real EVM (our JobMarket on py-evm) through the real indexer into the ledger."""

from __future__ import annotations

from datetime import timezone

from app.context import AppContext
from app.earnings import EarningsService
from tests.wallet.conftest import make_tester_chain
from wallet.deploy import deploy_all
from wallet.indexer import for_deployment
from wallet.market import MarketClient

NTK = 10**18
GPU_KEY = "GPU-5e2a7f0c-3d1b-4c8e-9a61-2f7d0b9c3070"


def test_accepted_and_released_payments_land_on_the_device_that_ran_the_job(tmp_path):
    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner, other = accounts[:4]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    now = chain.latest_timestamp()
    ids, _ = m.post_shards(buyer, kind="render", spec_hashes=["0x" + f"{i:064x}" for i in (1, 2, 3)],
                           spec_uris=["a", "b", "c"], reward_each_wei=5 * NTK, deadline=now + 7200, review_window_s=600)
    svc = EarningsService(AppContext.open(), tz=timezone.utc)
    try:
        led = svc.ledger
        for job_id, device in ((ids[0], GPU_KEY), (ids[1], "cpu")):  # what the MinerService notes at claim time
            m.claim(miner, job_id)
            led.assign_job(job_id, device, at=now)
            m.submit(miner, job_id, "0x" + "99" * 32, "r")
        m.claim(other, ids[2])  # another miner's job and pay
        m.submit(other, ids[2], "0x" + "98" * 32, "r")
        m.accept(buyer, ids[0])
        m.accept(buyer, ids[2])
        tester.time_travel(chain.latest_timestamp() + 700)
        m.release(miner, ids[1])  # the buyer never answered: the miner releases after the review window

        idx = for_deployment(chain, tmp_path / "index.sqlite", dep)
        idx.sync()
        res = svc.import_payment_events(idx.history(miner.address, limit=1000), miner=miner.address)
        assert (res.recorded, res.already, res.unassigned) == (2, 0, ())
        assert svc.import_payment_events(idx.history(limit=1000), miner=miner.address).already == 2  # idempotent
        idx.close()

        assert led.total_wei(GPU_KEY) == 5 * NTK and led.total_wei("cpu") == 5 * NTK
        assert led.total_wei() == 10 * NTK == m.token.balance_of(miner.address)
        pays = {p.job_id: p for p in led.payments()}
        assert set(pays) == {ids[0], ids[1]} and all(p.tx_hash.startswith("0x") for p in pays.values())
    finally:
        svc.close()
