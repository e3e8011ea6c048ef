"""A render order on OrderMarket with the real runtime on both sides: the miner renders each
shard as a sandboxed job in its own queue (its scheduler, its devices), seals and serves the
dataset; the buyer opens only the card and a few frames it picks after the commitment and
re-renders them in its own sandboxed verify job before paying; a tampered frame is caught."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.buyer.conftest import TABLE, context
from tests.orders.conftest import NTK, Parties

COUNT, SHARDS, SIZE = 8, 2, (96, 72)  # 4 frames a shard: the fewest a render order may have


def _runtime(home: Path):
    from app.runtime import open_queue, runtime_config
    from common.device_id import DeviceId
    from jobs.execute import Device
    from jobs.scheduler import Scheduler

    ctx = context(home)
    cfg = runtime_config(ctx, local_chain=True)
    queue = open_queue(ctx)
    sch = Scheduler(queue, cfg, lambda: [Device.of(DeviceId.cpu(), slots=1)])
    return ctx, cfg, queue, sch


@pytest.fixture
def render_parties(order_env, tmp_path):
    from app.orders import OrderBuyer, OrderMiner, Peer
    from app.orders.render import QueueSampleCheck, QueueShardWork, RenderSampler

    env = order_env
    env.om.deposit_stake(env.payout, env.miner.address, 50 * NTK)
    stop = threading.Event()
    made = []

    def make(tamper=None):
        mctx, mcfg, mqueue, msch = _runtime(tmp_path / "miner")
        bctx, bcfg, bqueue, bsch = _runtime(tmp_path / "buyer")
        for sch in (msch, bsch):
            threading.Thread(target=sch.run_forever, args=(stop, 0.1), daemon=True).start()
        prefix = f"order-{env.om.address[2:10].lower()}"
        work = QueueShardWork(mqueue, mcfg.store, prefix=prefix, device="any")
        if tamper:
            inner = work

            def work(doc, shard, inputs, out):
                inner(doc, shard, inputs, out)
                tamper(out)

        bp = Peer.open(tmp_path / "buyer", host="127.0.0.1", identity_key=bytes(env.buyer.key))
        mp = Peer.open(tmp_path / "miner", host="127.0.0.1", identity_key=bytes(env.miner.key))
        b = OrderBuyer(env.om, env.buyer, bp, tmp_path / "buyer", desk_host="127.0.0.1",
                       verify=QueueSampleCheck(bqueue, bcfg.store, bctx.paths.data_dir / "order-samples",
                                               prefix=f"verify-{prefix}"),
                       pick=RenderSampler(frames_per_shard=1))
        m = OrderMiner(env.om, env.miner, env.payout.address, mp, tmp_path / "miner", work=work, redeem_after_s=0)
        made.append((b, bp, mp, msch, bsch))
        return Parties(env, b, m, TABLE)

    yield make
    stop.set()
    for b, bp, mp, msch, bsch in made:
        b.close()
        bp.close()
        mp.close()
        msch.shutdown()
        bsch.shutdown()


def _post(p) -> int:
    from app.orders.render import render_order
    from jobs.render.spec import load_scene

    job, assets = render_order(load_scene(TABLE), count=COUNT, seed=11, size=SIZE)
    assert assets == []
    return p.buyer.post(job, shards=SHARDS, reward_each_wei=5 * NTK, deadline_s=3_600, review_window_s=600,
                        redeem_window_s=600)


def test_a_render_order_is_rendered_sampled_re_rendered_paid_and_merges(render_parties, tmp_path):
    from jobs.render.dataset import merge_datasets, read_card
    from jobs.render.verify import verify_dataset

    p = render_parties()
    env = p.env
    before = env.balance(env.payout)
    oid = _post(p)
    p.run(lambda: p.buyer.done(oid), steps=1200)
    assert env.balance(env.payout) == before + 10 * NTK
    cards = [read_card(p.buyer.result(oid, s)) for s in range(SHARDS)]
    assert [c["frame_ranges"] for c in cards] == [[[0, 4]], [[4, 8]]]
    merged = merge_datasets([p.buyer.result(oid, s) for s in range(SHARDS)], tmp_path / "merged")
    assert merged["frame_ranges"] == [[0, COUNT]]
    assert verify_dataset(tmp_path / "merged", sample=4)["passed"]  # every frame, after the key


def test_a_tampered_frame_is_caught_by_the_sample_and_the_shard_is_not_paid(render_parties):
    def tamper(out: Path) -> None:  # every frame's image replaced by another valid PNG of the same size
        from PIL import Image

        for img in (out / "images").iterdir():
            Image.new("RGB", SIZE, (255, 0, 255)).save(img)

    p = render_parties(tamper=tamper)
    env = p.env
    before = env.balance(env.payout)
    oid = _post(p)
    p.run(lambda: all(p.buyer.shard_state(oid, s)["state"] == "rejected" for s in range(SHARDS)), steps=1200)
    reason = p.buyer.shard_state(oid, 0)["reason"]
    assert "do not match their re-render" in reason or "does not match the hash" in reason, reason
    assert env.balance(env.payout) == before and env.om.order(oid).paid_shards == []
    p.run(lambda: all(p.miner.shards()[f"{oid}:{s}"]["stage"] == "rejected" for s in range(SHARDS)))
