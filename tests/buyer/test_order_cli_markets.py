"""`kminer order list|show|fetch` across both markets, as a user types them (real processes,
the embedded chain): orders named p2p:N and job:N, the default market on the local chain (the
order market: it is deployed there), one-line errors for ids that name no order or two markets.

An order-market order mined, paid and fetched on the local chain is in tests/buyer/test_local_orders.py;
between two machines in tests/e2e/test_nonroot_orders.py.
"""

from __future__ import annotations

import json

import pytest

from tests.buyer.test_order_cli import TABLE, kminer, one_line_error

NTK = 10**18


@pytest.mark.parametrize("args, message", [
    (["show", "x:1"], "use N, p2p:N (order market) or job:N (job market)"),
    (["show", "p2p:0"], "N from 1"),
    (["fetch", "job:", "--out", "/nonexistent/x"], "use N, p2p:N"),
    (["repost", "x3"], "use N, p2p:N (order market) or job:N (job market)"),
    (["repost", "p2p:3"], "order p2p:3 is on the order market, which has no repost: `kminer order watch --p2p` "
                          "refunds its undelivered shards once the order closes; then post the work again"),
])
def test_an_order_id_that_names_nothing_is_one_line(tmp_path, args, message):
    assert message in one_line_error(kminer(tmp_path, "order", *args))


@pytest.mark.slow
def test_list_and_show_cover_both_markets_with_their_own_ids(tmp_path):
    assert kminer(tmp_path, "wallet", "create").returncode == 0  # the local chain, with an order market
    # no flag: the local chain has an order market, so the order goes there
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "4", "--shards", "2", "--reward", "1.5",
               "--size", "96x72", "--yes", "--no-watch", "--json")   # 2 frames a shard: the fewest that are sampled
    assert r.returncode == 0, r.stderr
    posted = json.loads(r.stdout)
    assert (posted["market"], posted["ref"], posted["escrow_wei"]) == ("p2p", "p2p:1", str(3 * NTK))
    # the job market on request (its order 1 too)
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "2", "--reward", "1", "--size", "96x72",
               "--job-market", "--json")
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)["market"], json.loads(r.stdout)["id"]) == ("job", 1)

    listed = json.loads(kminer(tmp_path, "order", "list", "--json").stdout)
    assert [(o["ref"], o["state"]) for o in listed] == [("job:1", "open"), ("p2p:1", "open")]
    text = kminer(tmp_path, "order", "list").stdout
    assert "job market:\n  job:1 render 'table-top' 2 frames: open" in text
    assert "order market (peer to peer):\n  p2p:1 render 'table-top' 4 frames: open, 0/2 shard(s) unsealed, " \
           "3 NTK escrowed, 0 NTK paid" in text

    # a bare 1: the default market's order (the order market here); job:1 names the other one
    assert kminer(tmp_path, "order", "show", "job:1").stdout.startswith("job:1 on the job market:")
    shown = json.loads(kminer(tmp_path, "order", "show", "p2p:1", "--json").stdout)
    assert json.loads(kminer(tmp_path, "order", "show", "1", "--json").stdout) == shown
    assert [(s["index"], s["start"], s["count"], s["state"], s["miner"], s["result_dir"]) for s in shown["shards"]] == \
        [(0, 0, 2, "open", None, None), (1, 2, 2, "open", None, None)]
    assert (shown["reward_each_wei"], shown["escrow_wei"], shown["paid_wei"], shown["refunded_wei"], shown["closed"]) \
        == (str(int(1.5 * NTK)), str(3 * NTK), "0", "0", False)
    assert json.loads(kminer(tmp_path, "order", "show", "1", "--p2p", "--json").stdout) == shown

    assert "name different markets" in one_line_error(kminer(tmp_path, "order", "show", "job:1", "--p2p"))
    assert "no order 7 of yours on this network's job market or order market" in \
        one_line_error(kminer(tmp_path, "order", "show", "7"))
    # repost takes the market's id: job:1 reaches the job market's order 1 (nothing to post again yet)
    assert "order 1 has no rejected or refunded shard to post again" in \
        one_line_error(kminer(tmp_path, "order", "repost", "job:1"))
    out = tmp_path / "got"
    assert "shard(s) [0, 1] are not verified and unsealed yet" in \
        one_line_error(kminer(tmp_path, "order", "fetch", "p2p:1", "--out", str(out)))
    assert not out.exists()
