"""The order market end to end as a normal (non-root) user, the way a desktop rig runs the app.

A throwaway user (tests/jobs/as_user.py: no capabilities, no supplementary groups, a clean
environment, HOME in a temp folder it owns, TMPDIR /tmp as on a desktop) runs tests/e2e/nonroot_order_flow.py in
a network namespace of its own whose loopback carries two 10.213.250.x addresses (the chain and
the buyer on one, the miner on the other; not loopback addresses, so `kminer order render`
posts on the order market by default, as on a real network). As that user: `kminer devnet`
(anvil), a buyer and a miner with their own KMINER_HOME, the miner's `kminer agent` rendering
the shard in the real sandbox, the buyer's `kminer order watch` sampling, paying and unsealing,
`order show/list/fetch`. The test then checks the chain's balances, the dataset (every frame
verifies), and that the user left no file outside its temp folder and no process behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import NTK
from tests.jobs.as_user import UnprivilegedUser, missing_tools
from tests.wallet.conftest import ANVIL

pytestmark = pytest.mark.slow

CHAIN_HOST, MINER_HOST = "10.213.250.1", "10.213.250.2"
OUTSIDE = ("/tmp", "/var/tmp", "/dev/shm", "/run", str(Path(__file__).resolve().parents[2]))
"""Where a user could leave files outside its own folders (world-writable places, and the source tree)."""


def _owned_by(uid: int, skip: Path) -> set[str]:
    r = subprocess.run(["find", *[p for p in OUTSIDE if os.path.isdir(p)], "-xdev", "-path", str(skip), "-prune",
                        "-o", "-uid", str(uid), "-print"], capture_output=True, text=True)
    return set(r.stdout.split())


@pytest.fixture
def user():
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("needs root to create the throwaway user (as a normal user, run tests/e2e/nonroot_order_flow.py)")
    missing = missing_tools() + [t for t in ("ip", "find") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    if not ANVIL.exists():
        pytest.fail(f"anvil not found at {ANVIL}: run `make node` (npm ci)")
    u = UnprivilegedUser.create()
    try:
        yield u
    finally:
        runtime = Path(f"/tmp/kminer-{u.uid}")
        if runtime.is_dir() and not runtime.is_symlink() and runtime.stat().st_uid == u.uid:
            shutil.rmtree(runtime)  # its nonce locks (see the test's end)
        u.remove()


def test_a_normal_user_posts_mines_verifies_and_fetches_an_order_on_the_order_market(user):
    before = _owned_by(user.uid, user.home)
    work = user.home / "work"
    work.mkdir()
    os.chown(work, user.uid, user.gid)
    t0 = time.monotonic()
    p = user.run([sys.executable, "-m", "tests.e2e.nonroot_order_flow", str(work), CHAIN_HOST, MINER_HOST],
                 env={"QT_QPA_PLATFORM": "offscreen", "TMPDIR": "/tmp"}, net_addrs=(CHAIN_HOST, MINER_HOST), timeout_s=300)
    wall = time.monotonic() - t0
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-5000:])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    logs = f"watch:\n{out.get('watch_log')}\nagent:\n{out.get('agent_log')}"
    assert out["uid"] == user.uid != 0
    assert "Sandbox: strict" in out["agent_log"], logs  # the shard ran in bubblewrap, as this user

    # posted without a market flag: the order market (one escrow), named p2p:N
    posted = out["posted"]
    assert posted["market"] == "p2p" and posted["escrow_wei"] == str(2 * NTK), posted
    oid = posted["order_id"]
    assert out["desk_up"] and out["watch_rc"] == 0, logs
    rc, _, err = out["second_watch"]
    assert rc == 0 and "order market not served here: another Knowledge Miner process is serving" in err, err

    # show: every shard done, by the miner, paid, its unsealed result in the buyer's home
    show = out["show"]
    assert show["market"] == "p2p" and show["ref"] == f"p2p:{oid}" and show["state"] == "done", (show, logs)
    (shard,) = show["shards"]
    assert shard["state"] == "done" and shard["paid"] and shard["miner"], shard
    assert Path(shard["result_dir"]).is_relative_to(work / "buyer") and Path(shard["result_dir"]).is_dir()
    assert (show["paid_wei"], show["escrow_wei"], show["refunded_wei"]) == (str(2 * NTK), "0", "0")
    assert f"p2p:{oid} on the order market" in out["show_text"] and f"-> {shard['result_dir']}" in out["show_text"]
    assert [o["ref"] for o in out["list"]] == [f"p2p:{oid}"]

    # the fetched dataset: all four frames, every one re-rendered here and equal
    from jobs.render.verify import verify_dataset

    assert out["fetch"]["market"] == "p2p" and out["fetch"]["frame_ranges"] == [[0, 4]]
    got = work / "dataset"
    assert len(list((got / "images").iterdir())) == 4 and verify_dataset(got, sample=2)["passed"]

    # money, as the chain says: 2 NTK from the buyer's escrow to the miner (60 - 50 staked + 2)
    assert out["balances"] == {"buyer": 98 * NTK, "miner": 12 * NTK}, logs
    # the rig owner's view: the agent named the shard on its device while it ran (not "no job"),
    # and `kminer earnings` counts the order market's 2 NTK beside the job market's none
    assert any(re.search(rf"^cpu\s+\S+\s+order p2p:{oid} shard 0 render 2 NTK (running|committed)", ln)
               for ln in out["agent_shard_lines"]), out["agent_shard_lines"] or logs
    assert out["earnings"]["by_market"] == {"job": {"period_wei": "0", "total_wei": "0"},
                                            "order": {"period_wei": str(2 * NTK), "total_wei": str(2 * NTK)}}

    # nothing of the user's outside its folder but the nonce locks every process of a user
    # shares whatever its app home (common.private_dir: $XDG_RUNTIME_DIR, else /run/user/UID,
    # else $TMPDIR/kminer-UID, 0700); nothing of it still running
    runtime = f"/tmp/kminer-{user.uid}"
    extra = _owned_by(user.uid, user.home) - before
    assert {x for x in extra if not (x in (runtime, f"{runtime}/nonce-locks") or
                                     re.fullmatch(rf"{runtime}/nonce-locks/nonce-\d+-0x[0-9a-f]{{40}}\.lock", x))} == set()
    assert stat.S_IMODE(os.stat(runtime).st_mode) == 0o700
    left = subprocess.run(["pgrep", "-u", str(user.uid)], capture_output=True, text=True).stdout.split()
    assert left == [], left
    print(f"\nnon-root order flow: {wall:.1f} s in all ({out['timings']})")
