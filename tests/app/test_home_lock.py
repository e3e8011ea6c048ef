"""One process at a time on a home's miner DB and order book (app.home_lock): another real
process holds the lock file, as the app or `kminer agent` would on a JSON-RPC network."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app.home_lock import HomeBusy, HomeLock
from tests.agent.conftest import world  # noqa: F401  (fixture)
from tests.buyer.conftest import TABLE, buyer, chain_env  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


class Holder:
    """A second Python process that takes `path`'s HomeLock and keeps it until stopped."""

    def __init__(self, path: Path):
        code = ("import sys; from app.home_lock import HomeLock; l = HomeLock(sys.argv[1], 'held'); l.acquire(5); "
                "print('held', flush=True); sys.stdin.read()")
        self.p = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "held"

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.p.send_signal(signal.SIGKILL)
        else:
            self.p.stdin.close()
        self.p.wait(10)


def test_another_process_is_kept_out_and_a_killed_holder_frees_the_lock(tmp_path):
    path = tmp_path / "x.lock"
    h = Holder(path)
    with pytest.raises(HomeBusy, match="^busy here$"):
        HomeLock(path, "busy here").acquire(0.2)
    h.stop(kill=True)  # the OS drops a dead process's lock: no stale lock after a kill -9
    mine = HomeLock(path, "busy here")
    mine.acquire()
    again = HomeLock(path, "busy here")  # this process holds it: nesting, not a conflict
    again.acquire()
    again.release()
    mine.release()
    mine.release()  # more releases than holds: nothing happens
    h = Holder(path)  # released for real
    h.stop()


def test_a_second_miner_process_on_the_home_is_refused_in_one_line(world):  # noqa: F811
    h = Holder(world.ctx.paths.data_dir / "miner.lock")
    try:
        with pytest.raises(HomeBusy, match="another Knowledge Miner process .* is mining with this home"):
            world.service()
        assert not (world.ctx.paths.data_dir / "miner.sqlite").exists()  # nothing opened or recovered
    finally:
        h.stop()
    svc = world.service()
    svc.step()
    svc.close()
    Holder(world.ctx.paths.data_dir / "miner.lock").stop()  # close() gave it back


def test_orders_are_worked_by_one_process_and_never_posted_twice(buyer, chain_env, monkeypatch):  # noqa: F811
    import app.buyer.service as bs
    from app.buyer import BuyerError

    _, m, accounts = chain_env
    monkeypatch.setattr(bs, "POST_WAIT_S", 0.3)
    o = buyer.post_render(TABLE, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
    jobs, balance = m.job_count(), m.token.balance_of(accounts[1].address)
    h = Holder(buyer.ctx.paths.data_dir / f"orders-{m.chain.chain_id}.lock")
    try:
        # an order left half-posted would be posted again by a second pass: the pass is skipped
        buyer.book.set_shard(o.id, 0, state="posting")
        buyer.book.set_order(o.id, state="posting")
        first = buyer.step()
        assert len(first) == 1 and first[0].startswith("orders: another Knowledge Miner process")
        assert buyer.step() == []  # said once
        with pytest.raises(BuyerError, match="is handling this network's orders"):
            buyer.post_render(TABLE, count=2, shards=1, reward_each_wei=NTK, deadline_s=3600, review_window_s=600)
        assert len(buyer.orders()) == 1
        assert (m.job_count(), m.token.balance_of(accounts[1].address)) == (jobs, balance)
    finally:
        h.stop()
    events = buyer.step()  # the lock is free: the half-posted order is adopted from the chain, not paid twice
    assert any("posting resumed" in e for e in events)
    assert buyer.order(o.id).state == "open"
    assert (m.job_count(), m.token.balance_of(accounts[1].address)) == (jobs, balance)


def test_kminer_agent_says_in_one_line_that_the_home_is_mined_by_another_process(tmp_path):
    from tests.agent.test_agent_cli import kminer

    home = tmp_path / "home"
    home.mkdir()
    pw = home / "pw.txt"
    pw.write_text("agent-test-password\n")
    kminer(home, "wallet", "create", "--password-file", str(pw))
    h = Holder(home / "data" / "miner.lock")
    try:
        r = kminer(home, "agent", "--once", "--password-file", str(pw), ok=False)
    finally:
        h.stop()
    assert r.returncode == 1
    assert "\n" not in r.stderr.strip() and r.stderr.startswith(
        "kminer: error: another Knowledge Miner process (the app or `kminer agent`) is mining with this home")
