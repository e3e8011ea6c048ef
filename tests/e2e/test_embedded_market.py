"""The market end to end in one process on the embedded chain (the app's own persistent
EVM): a buyer posts a render order in 2 shards and a train order on it; the miner
(MinerService, CPU device, strict sandbox) claims, renders, trains and submits; the buyer
verifies every result in its own sandboxed verify jobs, accepts, merges the shards into a
dataset byte-identical to one full run, posts the train job only once the data is verified;
balances move by exactly the rewards and the miner's earnings ledger shows them."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import NTK, TINY_TRAIN, context, tiny_scene, tree_files


@pytest.mark.slow
def test_render_and_train_orders_are_verified_paid_and_merged(tmp_path):
    from eth_account import Account

    from app.buyer import BuyerService
    from app.devices import DeviceService
    from app.earnings import Ledger
    from app.miner import MinerService
    from app.account import WalletService
    from jobs.render.dataset import render_dataset
    from jobs.render.spec import load_scene

    t0 = time.monotonic()
    bctx, mctx = context(tmp_path / "buyer"), context(tmp_path / "miner")
    # two machines sharing a store (here a folder, as on a network mount): everything is
    # published there, and neither side reads the other's own store
    shared = (tmp_path / "shared-store").as_uri()
    for c in (bctx, mctx):
        c.settings.jobs.artifact_store_url = shared
    wallet = WalletService(bctx, network="local", passwords=[lambda a: "pw"])
    bctx.settings.wallet.account = wallet.keystore.create("pw")
    dep = wallet.deployment()  # a new local chain: contracts deployed, the buyer funded from the faucet
    market = wallet.market()
    buyer = wallet.signer()
    miner = Account.create()
    wallet.chain.transact(buyer, to=miner.address, value_wei=NTK, gas=21_000, what="gas for the miner")
    tok = market.token
    b0, m0 = tok.balance_of(buyer.address), tok.balance_of(miner.address)
    assert dep.chain_id == 27501 and m0 == 0

    bsvc = BuyerService(bctx, market, buyer)
    devs = DeviceService(mctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    mctx.settings.device("cpu").price_floor_ntk_per_hour = 0.01
    ledger = Ledger(mctx.paths.ledger_db)
    msvc = MinerService(mctx, market, miner, devs, ledger, sandbox="strict")
    try:
        scene = tiny_scene(tmp_path, count=4)
        render = bsvc.post_render(scene, count=4, shards=2, reward_each_wei=2 * NTK, deadline_s=3600,
                                  review_window_s=3600)
        train = bsvc.post_train([render.id], train_params=TINY_TRAIN, reward_wei=5 * NTK, deadline_s=3600,
                                review_window_s=3600)
        assert market.job_count() == 2  # the train job waits for verified data
        log = []
        end = time.monotonic() + 300
        while time.monotonic() < end and bsvc.order(train.id).state not in ("done", "stalled", "failed"):
            msvc.step()
            log += bsvc.step()
            time.sleep(0.2)
        r, t = bsvc.order(render.id), bsvc.order(train.id)
        assert r.state == "done" and t.state == "done", (r, t, log)
        assert [s.state for s in r.shards] == ["accepted", "accepted"] and t.shards[0].state == "accepted"
        for s in r.shards:
            assert s.verified and s.figures["mode"] == "exact" and s.figures["rgb_mad_max"] == 0.0
            assert s.figures["box_iou_min"] == 1.0 and s.figures["exact_matches"] == s.count
        fig = t.shards[0].figures
        assert t.shards[0].verified and fig["metric"] == "map50" and fig["gap"] <= 0.05, fig
        # every spec and result went through the shared store
        jobs = [market.job(s.job_id) for s in [*r.shards, *t.shards]]
        uris = [u for j in jobs for u in (j.spec_uri, j.result_uri)]
        assert all(u.startswith(shared + "/") for u in uris), uris
        assert {u.rsplit("/", 1)[1] for u in uris} <= {p.name for p in (tmp_path / "shared-store").iterdir()}
        # posted only after the data: the train job's inputs are the delivered shards (one held out)
        tjob = market.job(t.shards[0].job_id)
        spec = json.loads(bsvc.store.path(tjob.spec_hash.removeprefix("0x")).read_bytes())
        assert tjob.kind == "train" and [i["sha256"] for i in spec["inputs"].values()] == [r.shards[0].result_sha]
        assert t.params["holdout_inputs"][f"holdout-o{render.id}-s001"]["sha256"] == r.shards[1].result_sha

        # money: exactly the rewards moved; the miner's ledger has each payment (once it has seen it)
        end = time.monotonic() + 30
        while time.monotonic() < end and any(x.state != "paid" for x in msvc.rows()):
            msvc.step()
            time.sleep(0.2)
        assert tok.balance_of(miner.address) - m0 == 9 * NTK
        assert b0 - tok.balance_of(buyer.address) == 9 * NTK
        pays = ledger.payments()
        assert sorted(p.amount_wei for p in pays) == [2 * NTK, 2 * NTK, 5 * NTK]
        assert {p.job_id for p in pays} == {s.job_id for s in r.shards} | {tjob.id}

        # the merged dataset is byte for byte the dataset of one full run
        full = tmp_path / "full"
        render_dataset(load_scene(scene), full)
        merged = bsvc.fetch(render.id, tmp_path / "got")
        assert tree_files(merged) == tree_files(full) and len(tree_files(full)) > 10
        mcard, fcard = (json.loads((d / "dataset.json").read_text()) for d in (merged, full))
        assert mcard["frame_ranges"] == fcard["frame_ranges"] == [[0, 4]] and mcard["counts"] == fcard["counts"]
        model = bsvc.fetch(train.id, tmp_path / "model")
        assert (model / "model_card.json").is_file()

        rows = {x.job_id: x for x in msvc.rows()}
        claim_to_progress = [rows[j].first_progress_at - rows[j].claimed_at for j in rows if rows[j].first_progress_at]
        result_to_pay = [rows[j].paid_at - rows[j].uploaded_at for j in rows]
        print(f"\nembedded e2e: wall {time.monotonic() - t0:.1f} s; claim->first progress "
              f"{min(claim_to_progress):.2f}-{max(claim_to_progress):.2f} s; result->payment "
              f"{min(result_to_pay):.2f}-{max(result_to_pay):.2f} s (includes the buyer's verify job)")
    finally:
        msvc.close()
        bsvc.close()
        ledger.close()
        devs.close()
        wallet.close()
