"""A result in flight at the upgrade to sample plans (spec v2): the miner's key was kept without
a plan (each file a unit), the buyer's picks were chosen for a v1 spec. The real OrderMiner and
OrderBuyer reopened on those state folders (in-process chain, HTTP desk and key service on
127.0.0.1): the miner gives the key the plan `share` gives today, the buyer picks again, and
the shard is sampled within budget and paid."""

from __future__ import annotations

import json

from app.orders import OrderBuyer, OrderMiner
from app.orders.render import RenderSampler
from common.fsutil import atomic_write_json
from tests.orders.conftest import NTK
from tests.orders.test_sample_budget import _render_work


def test_a_shard_committed_before_the_upgrade_is_sampled_and_paid_after_it(parties, tmp_path):
    old_pick = lambda doc, shard, names: ["scene", *sorted(names)[:3]]  # noqa: E731  (what a v1 buyer saved)
    p = parties(work=_render_work, buyer_kw={"pick": old_pick})
    p.buyer.verify = lambda doc, shard, samples: None
    oid = p.buyer.post({"engine": "render", "count": 4, "scene": {}}, shards=1, reward_each_wei=5 * NTK,
                       deadline_s=3_600, review_window_s=600, redeem_window_s=600)
    p.run(lambda: oid in p.buyer._orders and p.buyer.shard_state(oid, 0).get("last_error"))  # the old picks: refused
    assert p.buyer.shard_state(oid, 0)["state"] == "fetching"
    # the state folders as the previous version wrote them
    ring, ih = p.miner.peer.node.keys, p.miner.shards()[f"{oid}:0"]["info_hash"]
    doc = ring.get(ih)
    assert "units" in doc
    for k in ("units", "free"):
        doc.pop(k)
    atomic_write_json(ring._path(ih), doc)
    path = p.buyer.home / f"{oid}.json"
    o = json.loads(path.read_text())
    o["spec"] = json.dumps({**json.loads(o["spec"]), "version": 1})
    o["shards"]["0"].pop("picks_v", None)
    atomic_write_json(path, o)

    # the upgrade: both sides start again on those folders
    port = p.buyer.desk.port
    p.buyer.close()
    buyer = OrderBuyer(p.env.om, p.env.buyer, p.buyer.peer,
                       tmp_path / "buyer", desk_host="127.0.0.1", desk_port=port, verify=lambda d, s, x: None,
                       pick=RenderSampler())
    try:
        assert "picks" not in buyer.shard_state(oid, 0)  # without the fix: the v1 picks, refused again
        miner = OrderMiner(p.env.om, p.env.miner, p.env.payout.address, p.miner.peer, p.miner.home,
                           work=_render_work, redeem_after_s=0)
        units = ring.get(ih).get("units")  # without the fix: none (each file a unit)
        assert units is not None and len(set(units.values())) == 4, ring.get(ih)
        p.buyer, p.miner = buyer, miner
        p.run(lambda: buyer.done(oid))
        assert p.env.om.order(oid).paid_shards == [0]
        assert len(buyer.shard_state(oid, 0)["samples"]) > 0
    finally:
        buyer.close()
