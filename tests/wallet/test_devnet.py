"""The JSON-RPC chain client against a real anvil on 127.0.0.1: EIP-1559 fees, nonces shared by
two processes, clear errors for insufficient funds, wrong chain id, RPC down."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from eth_account import Account

from wallet.chain import Chain
from wallet.deploy import deploy_all
from wallet.errors import InsufficientFunds, RpcUnavailable, WrongChain
from wallet.market import MarketClient

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


def test_devnet_transfer_is_eip1559_and_market_works(anvil, tmp_path):
    chain = Chain.rpc(anvil.url, expected_chain_id=31337, lock_dir=tmp_path)
    deployer, buyer, miner = (Account.from_key(k) for k in anvil.keys[:3])
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 100 * NTK)
    res = m.token.transfer(buyer, miner.address, NTK)
    tx = chain.w3.eth.get_transaction(res.tx_hash)
    assert tx["type"] == 2 and tx["maxFeePerGas"] >= tx["maxPriorityFeePerGas"] > 0
    assert m.token.balance_of(miner.address) == NTK
    job_id, _ = m.post(buyer, kind="train", spec_hash="0x" + "01" * 32, spec_uri="s", reward_wei=5 * NTK,
                       deadline=chain.latest_timestamp() + 3600, review_window_s=600, stake_wei=NTK)
    m.claim(miner, job_id)
    m.submit(miner, job_id, "0x" + "02" * 32, "r")
    m.accept(buyer, job_id)
    assert m.token.balance_of(miner.address) == 6 * NTK


def test_wrong_chain_id_is_a_clear_error(anvil, tmp_path):
    with pytest.raises(WrongChain, match="serves chain id 31337, but this network expects 11155111"):
        Chain.rpc(anvil.url, expected_chain_id=11155111, lock_dir=tmp_path)


def test_rpc_down_retries_then_reports(anvil_factory, tmp_path):
    port = anvil_factory.free_port()
    t0 = time.monotonic()
    with pytest.raises(RpcUnavailable, match="is the node running"):
        Chain.rpc(f"http://127.0.0.1:{port}", lock_dir=tmp_path, retry_delays_s=(0.1, 0.2))
    assert time.monotonic() - t0 >= 0.3  # it did back off and retry
    # a node that comes up during the backoff is picked up
    import threading

    threading.Timer(0.3, lambda: anvil_factory(port)).start()
    chain = Chain.rpc(f"http://127.0.0.1:{port}", lock_dir=tmp_path, retry_delays_s=(0.5, 1.0, 2.0, 4.0, 4.0))
    assert chain.chain_id == 31337


def test_insufficient_funds_is_a_clear_error(anvil, tmp_path):
    chain = Chain.rpc(anvil.url, lock_dir=tmp_path)
    poor = Account.create()
    with pytest.raises(InsufficientFunds, match="ETH for gas"):
        chain.transact(poor, to=Account.create().address, value_wei=1, what="sending ETH")
    rich = Account.from_key(anvil.keys[0])
    dep = deploy_all(chain, rich)
    m = MarketClient(chain, dep)
    chain.transact(rich, to=poor.address, value_wei=10**18, what="gas money")
    with pytest.raises(InsufficientFunds, match="not enough tokens"):
        m.token.transfer(poor, rich.address, NTK)


_SENDER = textwrap.dedent("""
    import sys
    from eth_account import Account
    from wallet.chain import Chain
    chain = Chain.rpc(sys.argv[1], lock_dir=sys.argv[2])
    acct = Account.from_key(sys.argv[3])
    for i in range(int(sys.argv[4])):
        chain.transact(acct, to=sys.argv[5], value_wei=1, what="tick")
    print("done")
""")


@pytest.mark.slow
def test_two_processes_share_one_account_without_nonce_clashes(anvil_factory, tmp_path):
    # a block time makes transactions wait in the pool, so the pending nonce is what counts
    a = anvil_factory(extra=("--block-time", "1"))
    sink = Account.create().address
    n = 6
    procs = [subprocess.Popen([sys.executable, "-c", _SENDER, a.url, str(tmp_path), a.keys[0], str(n), sink],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-1500:]
    chain = Chain.rpc(a.url, lock_dir=tmp_path)
    assert chain.balance_wei(sink) == 2 * n
    assert chain.w3.eth.get_transaction_count(Account.from_key(a.keys[0]).address) == 2 * n


def test_faucet_is_disabled_on_mainnet_chain_id(anvil_factory, tmp_path):
    from wallet import artifacts
    from wallet.errors import ContractRevert, WalletError
    from wallet.token import TokenClient

    a = anvil_factory(extra=("--chain-id", "1"))
    chain = Chain.rpc(a.url, expected_chain_id=1, lock_dir=tmp_path)
    me = Account.from_key(a.keys[0])
    with pytest.raises(WalletError, match="mainnet"):
        deploy_all(chain, me)  # the app never deploys test contracts on chain 1
    art = artifacts.load("NTK")
    ntk = chain.transact(me, chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(5)).receipt
    tok = TokenClient(chain, ntk["contractAddress"])
    with pytest.raises(ContractRevert, match="FaucetDisabledOnMainnet"):
        tok.mint(me, me.address, NTK)
    assert tok.balance_of(me.address) == 5
