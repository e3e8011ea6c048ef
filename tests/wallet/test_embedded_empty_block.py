"""The embedded chain mines an empty block on request, stamped now, so chain time can pass
a review window while no one sends a transaction; the block survives a restart."""

from __future__ import annotations

import time

from eth_account import Account

from wallet.chain import Chain
from wallet.embedded import EmbeddedChain, empty_block_miner


def test_mine_empty_moves_chain_time_and_persists(tmp_path):
    user = Account.create()
    with EmbeddedChain(tmp_path / "chain", user.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=tmp_path)
        t0, n0 = chain.latest_timestamp(), chain.block_number()
        time.sleep(1.1)
        mine = empty_block_miner(chain.w3)
        assert mine is not None
        n1 = mine()
        assert n1 == n0 + 1 == chain.block_number()
        blk = chain.w3.eth.get_block("latest")
        assert blk["timestamp"] >= t0 + 1 and blk["timestamp"] <= int(time.time()) and not blk["transactions"]
        assert chain.balance_wei(user.address) > 0  # state unchanged by the empty block
    with EmbeddedChain(tmp_path / "chain") as ec:
        assert ec.block_number == n1
        assert ec.mine_empty() == n1 + 1


def test_other_chains_have_no_empty_block_miner(tmp_path):
    from tests.wallet.conftest import make_tester_chain

    _tester, chain, _accounts = make_tester_chain(tmp_path)
    assert empty_block_miner(chain.w3) is None
