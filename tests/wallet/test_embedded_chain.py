"""The embedded chain persists: restart keeps balances and events, kill -9 leaves it
consistent, a second process cannot open it, transactions are found without a scan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from eth_account import Account

from wallet.chain import Chain
from wallet.deploy import deploy_all
from wallet.embedded import LOCAL_CHAIN_ID, EmbeddedChain
from wallet.errors import ChainLocked
from wallet.token import TokenClient

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


def test_restart_keeps_balances_and_events(tmp_path):
    user, other = Account.create(), Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address) as ec:
        assert ec.created
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        assert chain.chain_id == LOCAL_CHAIN_ID
        dep = deploy_all(chain, user)
        tok = TokenClient(chain, dep.ntk)
        tok.mint(user, user.address, 1_000 * NTK)
        tx = tok.transfer(user, other.address, 7 * NTK)
        eth_before = chain.balance_wei(user.address)
        head = ec.block_number
    with EmbeddedChain(tmp_path / "chain") as ec:
        assert not ec.created and ec.block_number == head
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        tok = TokenClient(chain, dep.ntk)
        assert tok.balance_of(other.address) == 7 * NTK
        assert tok.balance_of(user.address) == 993 * NTK
        assert chain.balance_wei(user.address) == eth_before
        logs = tok.contract.events.Transfer().get_logs(from_block=0, to_block="latest")
        assert [(e["args"]["to"], e["args"]["value"]) for e in logs][-1] == (other.address, 7 * NTK)
        assert chain.w3.eth.get_transaction_receipt(tx.tx_hash)["blockNumber"] == tx.block_number
        tok.transfer(user, other.address, NTK)  # and it keeps going
        assert tok.balance_of(other.address) == 8 * NTK


def test_second_instance_is_refused(tmp_path):
    user = Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address):
        code = ("import sys; from wallet.embedded import EmbeddedChain; from wallet.errors import ChainLocked\n"
                f"try:\n EmbeddedChain({str(tmp_path / 'chain')!r})\nexcept ChainLocked as e:\n print(e); sys.exit(3)\n")
        r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert r.returncode == 3 and "another Knowledge Miner process" in r.stdout
        with pytest.raises(ChainLocked):
            EmbeddedChain(tmp_path / "chain")
    with EmbeddedChain(tmp_path / "chain"):  # free again once closed
        pass


def test_new_chain_funds_only_the_user(tmp_path):
    user = Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        assert chain.balance_wei(user.address) > 0
        assert chain.w3.eth.accounts == []  # no tester keys exist on this chain
        with pytest.raises(RuntimeError):
            ec.backend.take_snapshot()


_WRITER = textwrap.dedent("""
    import sys
    from eth_account import Account
    from wallet.chain import Chain
    from wallet.embedded import EmbeddedChain
    from wallet.token import TokenClient
    user = Account.from_key(sys.argv[2]); to = sys.argv[3]; ntk = sys.argv[4]
    with EmbeddedChain(sys.argv[1], user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=sys.argv[1])
        tok = TokenClient(chain, ntk)
        i = 0
        while True:
            tok.transfer(user, to, 5)
            i += 1
            print(i, flush=True)
""")


@pytest.mark.slow
def test_kill_9_during_transactions_leaves_chain_consistent(tmp_path):
    user, other = Account.create(), Account.create()
    chain_dir = tmp_path / "chain"
    with EmbeddedChain(chain_dir, user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=chain_dir)
        dep = deploy_all(chain, user)
        TokenClient(chain, dep.ntk).mint(user, user.address, 10**6 * NTK)
    total_seen = 0
    for round_ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(chain_dir), user.key.hex(), other.address, dep.ntk],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            want = 8 + 7 * round_
            seen = 0
            deadline = time.monotonic() + 60
            while seen < want and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    pytest.fail(f"writer died: {proc.stderr.read()[-800:]}")
                seen = int(line)
            time.sleep(0.005 * round_)  # land the kill at different points of a transaction
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        total_seen += seen
        with EmbeddedChain(chain_dir) as ec:
            chain = Chain.over_embedded(ec, lock_dir=chain_dir)
            tok = TokenClient(chain, dep.ntk)
            events = tok.contract.events.Transfer().get_logs(from_block=0, to_block="latest",
                                                             argument_filters={"to": other.address})
            bal = tok.balance_of(other.address)
            # every mined transfer is both in the balance and in the event log; at most one more
            # than the writer reported (mined, then killed before it printed)
            assert bal == 5 * len(events)
            assert total_seen <= len(events) <= total_seen + 1
            assert tok.balance_of(user.address) == 10**6 * NTK - bal
            assert chain.w3.eth.get_block("latest")["number"] == ec.block_number
            total_seen = len(events)
    with EmbeddedChain(chain_dir) as ec:  # still usable for new transactions
        chain = Chain.over_embedded(ec, lock_dir=chain_dir)
        TokenClient(chain, dep.ntk).transfer(user, other.address, 5)
