"""The order service's port probe and its redeem-at-once rule, with real sockets on 127.0.0.1,
a real listener in another process, a real AppContext and the in-memory chain."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from eth_account import Account

from app.account.mining_key import MarketSigner
from app.context import AppContext
from app.orders.service import _free, _redeem_after_s
from wallet.chain import Chain

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux socket semantics")


@linux
def test_a_port_another_process_listens_on_is_busy_and_time_wait_is_free():
    code = ("import socket,sys;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            "s.bind(('0.0.0.0',0));s.listen();print(s.getsockname()[1],flush=True);sys.stdin.read()")
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline())
        assert not _free("127.0.0.1", port)  # a wildcard listener of another process
        assert not _free("0.0.0.0", port)
    finally:
        p.stdin.close()
        p.wait(timeout=5)
    # a socket of ours listening on loopback
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not _free("127.0.0.1", port)
        c = socket.create_connection(("127.0.0.1", port))
        a, _ = s.accept()
        a.close()  # the server side closes first: its end of the connection stays in TIME_WAIT
        time.sleep(0.05)
        c.close()
    assert _free("127.0.0.1", port)  # only TIME_WAIT left: a restart keeps its port


def test_redeem_at_once_for_a_signer_paying_this_wallet_on_the_embedded_chain_only(order_env):
    env = order_env
    ctx = AppContext.open()
    ctx.settings.wallet.account = env.payout.address
    later = ctx.settings.transport.redeem_after_minutes * 60
    assert later > 0
    key = Account.create()
    other = Chain(env.chain.w3, embedded=False, label="another network")
    own = MarketSigner(key, env.payout.address.lower(), "mining-key")
    assert _redeem_after_s(ctx, own, env.chain) == 0.0  # without the fix: the setting (an hour)
    assert _redeem_after_s(ctx, own, other) == later
    stranger = MarketSigner(key, env.stranger.address, "mining-key")
    assert _redeem_after_s(ctx, stranger, env.chain) == later
    derived = MarketSigner(key, env.stranger.address, "local-mining-account")
    assert _redeem_after_s(ctx, derived, env.chain) == 0.0
    assert _redeem_after_s(ctx, derived, other) == later
