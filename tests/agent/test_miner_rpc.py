"""Transient failures: the JSON-RPC node (a real anvil) goes away mid-job and comes back; the
miner keeps every state, backs off (doubling to a cap), says "waiting for RPC (retry in N s)",
and carries on when the node is back: the job is rendered once and submitted."""

from __future__ import annotations

import hashlib
import time

from eth_account import Account

from app.context import AppContext
from app.devices import DeviceService
from app.earnings import Ledger
from app.miner import MinerService
from tests.agent.conftest import NTK, render_spec_bytes
from tests.wallet.conftest import start_anvil, stop_anvil
from wallet.chain import Chain
from wallet.deploy import deploy_all
from wallet.market import JobStatus, MarketClient


def test_rpc_down_mid_job_backs_off_keeps_state_and_resumes(tmp_path):
    state = tmp_path / "anvil-state.json"
    node = start_anvil(extra=("--state", str(state)))
    port = node.port
    svc = devs = ledger = None
    try:
        chain = Chain.rpc(node.url, lock_dir=tmp_path / "locks", retry_delays_s=(0.05,), timeout_s=2)
        deployer, buyer, miner = (Account.from_key(k) for k in node.keys[:3])
        dep = deploy_all(chain, deployer)
        m = MarketClient(chain, dep)
        m.token.mint(deployer, buyer.address, 100 * NTK)
        data = render_spec_bytes(frames=12)
        spec = tmp_path / "spec.json"
        spec.write_bytes(data)
        job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(),
                           spec_uri=spec.as_uri(), reward_wei=2 * NTK, deadline=chain.latest_timestamp() + 3600,
                           review_window_s=600)
        ctx = AppContext.open()
        devs = DeviceService(ctx, idle=lambda: None)
        devs.set_mode("cpu", "mining")
        ledger = Ledger(ctx.paths.ledger_db)
        svc = MinerService(ctx, m, miner, devs, ledger, backoff_first_s=0.2, backoff_cap_s=0.8)
        end = time.monotonic() + 60
        while (svc.row(job_id) is None or svc.row(job_id).state != "running") and time.monotonic() < end:
            svc.step()
            time.sleep(0.1)
        assert svc.row(job_id).state == "running"

        stop_anvil(node)  # the node goes away (its state is dumped to the file)
        seen, texts = [], []
        end = time.monotonic() + 60
        while time.monotonic() < end and (len(seen) < 5 or not svc.scheduler.wait_idle(0)):
            svc.step()
            if svc.backoff_s and (not seen or seen[-1] != svc.backoff_s or svc.backoff_s == 0.8):
                seen.append(svc.backoff_s)
                texts.append(svc.status_text())
            time.sleep(0.05)
        assert seen[:4] == [0.2, 0.4, 0.8, 0.8], seen  # doubles up to the cap
        assert texts[-1].startswith("waiting for RPC (retry in ") and texts[-1].endswith(" s)")
        assert svc.row(job_id).state == "running"  # the render finished meanwhile; nothing lost
        assert svc.queue.get(svc.queue_id(job_id)).state == "succeeded"

        node = start_anvil(port, extra=("--state", str(state)))  # back, with its chain
        end = time.monotonic() + 60
        while time.monotonic() < end and svc.row(job_id).state != "submitted":
            svc.step()
            time.sleep(0.2)
        assert svc.row(job_id).state == "submitted" and svc.backoff_s == 0 and svc.status_text() == ""
        assert m.job(job_id).status == JobStatus.SUBMITTED and m.job(job_id).miner == miner.address
        assert len(svc.queue.attempts(svc.queue_id(job_id))) == 1
    finally:
        if svc is not None:
            svc.close()
        if ledger is not None:
            ledger.close()
        if devs is not None:
            devs.close()
        stop_anvil(node)


def test_on_a_dev_node_the_miner_releases_after_the_review_window(tmp_path, anvil):
    """anvil mines only for transactions: the miner makes a block to move chain time on."""
    chain = Chain.rpc(anvil.url, lock_dir=tmp_path / "locks")
    deployer, buyer, miner = (Account.from_key(k) for k in anvil.keys[:3])
    m = MarketClient(chain, deploy_all(chain, deployer))
    m.token.mint(deployer, buyer.address, 100 * NTK)
    data = render_spec_bytes(frames=1)
    spec = tmp_path / "spec.json"
    spec.write_bytes(data)
    job_id, _ = m.post(buyer, kind="render", spec_hash="0x" + hashlib.sha256(data).hexdigest(), spec_uri=spec.as_uri(),
                       reward_wei=NTK, deadline=chain.latest_timestamp() + 3600, review_window_s=2)
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ledger = Ledger(ctx.paths.ledger_db)
    svc = MinerService(ctx, m, miner, devs, ledger)
    try:
        before = m.token.balance_of(miner.address)
        end = time.monotonic() + 90
        while time.monotonic() < end and (svc.row(job_id) is None or svc.row(job_id).state != "paid"):
            svc.step()
            time.sleep(0.3)
        assert svc.row(job_id).state == "paid" and m.job(job_id).status == JobStatus.RELEASED
        assert m.token.balance_of(miner.address) - before == NTK
    finally:
        svc.close()
        ledger.close()
        devs.close()
