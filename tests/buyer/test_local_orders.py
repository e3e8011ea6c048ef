"""The order market on the embedded local chain (the app's default network), from the command
line as a user types it: `kminer order render` posts there by default, `kminer agent` in the
same home mines it with the derived mining account (gas and a test stake on first start) and
serves the order's desk, the buyer's check passes, the voucher is redeemed at once, and
`kminer order fetch` merges the unsealed dataset (real processes, real sandboxed renders)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.buyer.test_order_cli import ROOT, TABLE, kminer

pytestmark = pytest.mark.slow


def test_a_default_order_on_the_local_chain_is_mined_by_this_homes_agent_and_fetched(tmp_path):
    assert kminer(tmp_path, "wallet", "create").returncode == 0
    assert kminer(tmp_path, "devices", "set-mode", "cpu", "mining").returncode == 0
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "4", "--shards", "2", "--reward", "1.5",
               "--size", "96x72", "--yes", "--no-watch", "--json")
    assert r.returncode == 0, r.stderr
    assert "posting on the order market" not in r.stderr  # --json: data only
    posted = json.loads(r.stdout)
    assert (posted["market"], posted["ref"], posted["escrow_wei"]) == ("p2p", "p2p:1", str(3 * 10**18))

    env = dict(os.environ, KMINER_HOME=str(tmp_path), KMINER_PASSWORD="order-cli-pw")
    log = tmp_path / "agent.log"
    with open(log, "w") as out:
        agent = subprocess.Popen([sys.executable, "-m", "cli", "agent", "--interval", "0.5"], cwd=ROOT, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while log.read_text().count("result unsealed") < 2 and agent.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        agent.send_signal(signal.SIGINT)
        try:
            agent.wait(60)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
    said = log.read_text()
    assert said.count("result unsealed") == 2, said[-3000:]
    assert "agent: signing with the local mining account" in said
    assert "test NTK staked for" in said and "serving this home's open orders" in said
    # redeemed at once (no hour's wait on this chain), then each key released to the buyer
    assert said.count("paid; key released to the buyer") == 2 and "voucher(s) in one batch" in said

    listed = json.loads(kminer(tmp_path, "order", "list", "--json").stdout)
    assert [(o["ref"], o["state"]) for o in listed] == [("p2p:1", "done")]
    got = tmp_path / "dataset"
    r = kminer(tmp_path, "order", "fetch", "1", "--out", str(got))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (got / "images").iterdir()) == [f"00000{i}.png" for i in range(4)]
    assert len(json.loads((got / "annotations.json").read_text())["images"]) == 4
