"""`kminer agent` on the local chain when this home's order desk cannot be served (another
process holds the buyer's lock): one line, exit 1, nothing left open (the same home's agent
starts cleanly once the holder is gone). Real CLI processes, the embedded chain."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.buyer.test_order_cli import ROOT, TABLE, kminer, one_line_error

pytestmark = pytest.mark.slow

HOLD = ("import sys, time; from app.context import AppContext; from app.home_lock import HomeLock; "
        "ctx = AppContext.open(); lock = HomeLock(ctx.paths.data_dir / 'p2p-buyer.lock', 'x'); lock.acquire(); "
        "print('held', flush=True); sys.stdin.read()")


def test_the_agent_says_in_one_line_when_the_local_buyer_cannot_start(tmp_path):
    assert kminer(tmp_path, "wallet", "create").returncode == 0
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "4", "--shards", "1", "--reward", "1.5",
               "--size", "96x72", "--yes", "--no-watch", "--json")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, KMINER_HOME=str(tmp_path), KMINER_PASSWORD="order-cli-pw")
    holder = subprocess.Popen([sys.executable, "-c", HOLD], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = kminer(tmp_path, "agent", "--once")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    line = one_line_error(r)  # without the fix: a HomeBusy traceback
    assert "cannot serve this home's orders" in line and "order desk" in line, line
