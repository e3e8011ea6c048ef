"""A rig mining the order market beside the job market, as its owner sees it (real EVM, real
queue and sandboxed render jobs, real transport peers and the buyer's desk on 127.0.0.1):
the agent's status line names the order-market shard a device runs (order, shard, kind,
reward, stage), the Jobs page joins it, what the order market paid shows in the earnings
(per shard, once) beside the job market's, and a rig restarted with shards running,
committed, vouched and paid carries on: the running shard is run again, nothing is lost or
paid twice."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.agent.conftest import NTK
from tests.buyer.conftest import TABLE, context

COUNT, SHARDS, SIZE, REWARD = 8, 2, (96, 72), 5 * NTK  # 4 frames a shard (the fewest)


def _buyer_side(world, om, tmp: Path, stop: threading.Event):
    """The buyer: its own home, queue and scheduler (the CPU) for the sampled re-render checks."""
    from app.orders import OrderBuyer, Peer
    from app.orders.render import QueueSampleCheck, RenderSampler
    from app.runtime import open_queue, runtime_config
    from common.device_id import DeviceId
    from jobs.execute import Device
    from jobs.scheduler import Scheduler

    bctx = context(tmp / "buyer-home")
    cfg = runtime_config(bctx, local_chain=True)
    queue = open_queue(bctx)
    sch = Scheduler(queue, cfg, lambda: [Device.of(DeviceId.cpu(), slots=1)])
    threading.Thread(target=sch.run_forever, args=(stop, 0.1), daemon=True).start()
    peer = Peer.open(tmp / "buyer-peer", host="127.0.0.1", identity_key=bytes(world.buyer.key))
    buyer = OrderBuyer(om, world.buyer, peer, tmp / "buyer-orders", desk_host="127.0.0.1",
                       verify=QueueSampleCheck(queue, cfg.store, bctx.paths.data_dir / "samples", prefix="verify-rig"),
                       pick=RenderSampler(frames_per_shard=1))
    return buyer, peer, sch


class Rig:
    """What `kminer agent` builds (MinerService, the order miner on its queue, the ledger), with
    a stop and a start in between as a reboot does."""

    def __init__(self, world, signer):
        self.world, self.signer = world, signer
        self.svc = self.runner = None
        self.events: list[str] = []
        self.paid_wei: list[int] = []

    def start(self, *, redeem_after_minutes: float = 60.0) -> None:
        from app.orders.service import OrderMinerRunner

        w = self.world
        w.ctx.settings.transport.redeem_after_minutes = redeem_after_minutes
        self.svc = w.service()
        self.runner = OrderMinerRunner(w.ctx, w.market, self.signer, self.svc.queue, self.svc.store,
                                       quote=self.svc.quote_spec, ledger=w.ledger, indexer=self.svc.indexer)
        self.svc.add_work_source(self.runner)

    def stop(self) -> None:
        self.runner.close()
        self.svc.close()

    def step(self) -> None:
        self.svc.step()
        self.events += self.runner.step()
        self.paid_wei += self.runner.paid_wei  # what the GUI's pass report announces (the tray)

    def stages(self) -> dict[int, str]:
        return {v.shard: v.stage for v in self.runner.views()}


@pytest.fixture
def order_rig(world, tmp_path):
    from app.account import MarketSigner
    from app.orders.service import order_market

    om = order_market(world.market)
    payout = world.other
    world.market.token.mint(world.deployer, payout.address, 100 * NTK)
    om.deposit_stake(payout, world.miner.address, 50 * NTK)
    signer = MarketSigner(world.miner, payout.address, "mining-key")
    stop = threading.Event()
    buyer, peer, sch = _buyer_side(world, om, tmp_path, stop)
    rig = Rig(world, signer)
    rig.start()
    yield SimpleNamespace(world=world, om=om, buyer=buyer, rig=rig, payout=payout)
    stop.set()
    rig.stop()
    buyer.close()
    peer.close()
    sch.shutdown()


def _post(buyer) -> int:
    from app.orders.render import render_order
    from jobs.render.spec import load_scene

    job, _ = render_order(load_scene(TABLE), count=COUNT, seed=5, size=SIZE)
    return buyer.post(job, shards=SHARDS, reward_each_wei=REWARD, deadline_s=3_600, review_window_s=600,
                      redeem_window_s=600)


@pytest.mark.slow
def test_a_rebooted_rig_shows_runs_again_and_books_its_order_market_shards(order_rig, capsys, qtbot):
    from app.earnings import EarningsService
    from app.runtime.jobs import JobsService
    from cli.commands.agent import _fmt
    from cli.main import main

    o = order_rig
    rig, world = o.rig, o.world
    oid = _post(o.buyer)
    before = world.market.token.balance_of(o.payout.address)
    qid = rig.runner.work.job_id({"order_id": oid}, 0)
    restarted: dict[str, dict[int, str]] = {}
    seen_line = work = None
    end = time.monotonic() + 240
    while time.monotonic() < end:
        o.buyer.step()
        rig.step()
        stages = rig.stages()
        if seen_line is None and stages.get(0) == "running" and qid in rig.svc.scheduler.running():
            line = next(ln for ln in rig.svc.device_lines() if ln["device"] == "cpu")
            if line["order"] is not None:
                seen_line = line
                # the GUI's pass report: what each device runs, by device key (its cards show it)
                from app.market_session import MarketSession

                work = MarketSession._device_work(SimpleNamespace(miner=rig.svc))
                assert work["cpu"].startswith(f"order p2p:{oid} shard 0 render 5 NTK running"), work
                rows = {r["id"]: r for r in JobsService(world.ctx, SimpleNamespace(miner=rig.svc)).jobs()}
                assert rows[qid]["order"]["ref"] == f"p2p:{oid}" and rows[qid]["reward_wei"] == REWARD
                assert rows[qid]["buyer"] == world.buyer.address.lower() and rows[qid]["payment"] is None
        # a reboot in each stage, the first time a shard is in it (the running one mid-render)
        for stage in ("running", "committed", "vouched", "paid"):
            if stage not in restarted and stage in stages.values() and (stage != "running" or seen_line):
                restarted[stage] = stages
                rig.stop()
                rig.start(redeem_after_minutes=0 if stage in ("vouched", "paid") else 60)  # then collect
                break
        if stages == {0: "paid", 1: "paid"} and "paid" in restarted:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"stuck at {rig.stages()}; restarts {restarted}; events:\n" + "\n".join(rig.events[-30:]))

    # the status line named the shard while it rendered
    assert seen_line["order"]["ref"] == f"p2p:{oid}" and seen_line["order"]["shard"] == 0
    assert (seen_line["kind"], seen_line["order"]["stage"], seen_line["order"]["reward_wei"]) == \
        ("render", "running", str(REWARD))
    assert "order p2p:%d shard 0 render 5 NTK running" % oid in _fmt(seen_line), _fmt(seen_line)
    assert "no job" not in _fmt(seen_line)

    # every stage met a restart; the shard stopped mid-render was run again, not lost
    assert set(restarted) == {"running", "committed", "vouched", "paid"}, restarted
    attempts = rig.svc.queue.attempts(qid)
    assert len(attempts) >= 2 and attempts[-1].state == "succeeded", [(a.n, a.state, a.reason) for a in attempts]
    assert world.market.token.balance_of(o.payout.address) - before == SHARDS * REWARD
    assert o.om.order(oid).paid_shards == [0, 1]

    # the earnings: per shard, once, on the device that ran it, beside the job market's
    for _ in range(3):  # passes after payment (and after the last restart) record nothing again
        rig.step()
    pays = world.ledger.payments(market="order")
    assert [(p.job_id, p.shard, p.amount_wei, p.device_key) for p in pays] == \
        [(oid, 0, REWARD, "cpu"), (oid, 1, REWARD, "cpu")]
    assert world.ledger.wei_by_market() == {"job": 0, "order": SHARDS * REWARD}
    assert rig.paid_wei == [REWARD, REWARD]  # each payment announced once, across the restarts
    cpu = next(ln for ln in rig.svc.device_lines() if ln["device"] == "cpu")
    assert cpu["earned_today_wei"] == SHARDS * REWARD
    rows = {r["id"]: r for r in JobsService(world.ctx, SimpleNamespace(miner=rig.svc)).jobs()}
    assert rows[qid]["payment"] == "paid" and rows[qid]["order"]["stage"] == "paid"

    # the GUI's device card says what the device runs (from the pass report), and nothing after
    from ui.background import Background
    from ui.devices_view import DevicesView
    from ui.jobs_view import COLUMNS, JobsView

    dev_runner = Background("devices")
    devices_view = DevicesView(devices=world.devices, runner=dev_runner)
    qtbot.addWidget(devices_view)
    try:
        devices_view.set_work(work)
        card = devices_view.cards["cpu"]
        assert card.work_label.text() == f"Running {work['cpu']}" and not card.work_label.isHidden()
        devices_view.set_work({})
        assert card.work_label.isHidden()
    finally:
        devices_view.timer.stop()
        dev_runner.shutdown()

    # the GUI's Jobs page: the shard's buyer, reward and payment, its order in the tooltip

    runner = Background("jobs")
    view = JobsView(jobs=JobsService(world.ctx, SimpleNamespace(miner=rig.svc)), runner=runner, interval_s=0.2)
    qtbot.addWidget(view)
    try:
        qtbot.waitUntil(lambda: view.table.rowCount() >= 2, timeout=5000)
        row = next(i for i in range(view.table.rowCount()) if view.table.item(i, 0).text() == qid)
        cells = {c: view.table.item(row, COLUMNS.index(c)).text() for c in ("Buyer", "Reward", "Paid")}
        assert cells["Buyer"] != "local" and cells["Reward"] == "5 NTK" and cells["Paid"].startswith("paid"), cells
        assert view.table.item(row, 0).toolTip() == f"order-market order p2p:{oid}, shard 0: paid"
    finally:
        view.timer.stop()
        runner.shutdown()

    svc = EarningsService(world.ctx, ledger=world.ledger)
    rep = svc.report([], days=1)
    assert rep.by_market == {"job": 0, "order": SHARDS * REWARD}
    capsys.readouterr()
    assert main(["earnings", "--days", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by_market"]["order"] == {"period_wei": str(SHARDS * REWARD), "total_wei": str(SHARDS * REWARD)}
    assert main(["earnings", "--days", "1"]) == 0
    assert "order market 10 NTK in this period" in capsys.readouterr().out
