"""`kminer market networks` and `kminer market deploy` as a user runs them: which networks have
a market (the project's list and the user's deployment files, a corrupt one reported, never
trusted), and deploying the markets on anvil posing as Base Sepolia (OP-stack: the L1 data fee
in the estimate) and as Base (a main network: only with a token the user confirms). The
estimate is shown before anything is sent, nothing is sent without a yes, and the deployments
file it writes is what the app then finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from tests.wallet.test_fees import L1, set_l1_block
from wallet import artifacts
from wallet.chain import Chain
from wallet.deploy import deploy_market, estimate_deploy
from wallet.networks import Network, get_network

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


class Home:
    def __init__(self, root: Path):
        self.dir = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "pw.txt").write_text("deployer-pw\n")

    def run(self, *args: str, ok: bool = True, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        env = dict(os.environ, KMINER_HOME=str(self.dir))
        env.pop("KMINER_PASSWORD", None)
        r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=120, stdin=stdin)
        if ok:
            assert r.returncode == 0, f"kminer {' '.join(args)}: {r.stdout[-1500:]}\n{r.stderr[-1500:]}"
        return r

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)

    def import_key(self, key: str, net: list[str]) -> str:
        (self.dir / "key.txt").write_text(key)
        return self.json("wallet", "import", "--private-key-file", str(self.dir / "key.txt"), "--password-file",
                         str(self.dir / "pw.txt"), *net)["address"]

    @property
    def chain_dir(self) -> Path:
        return self.dir / "data" / "chain"


def rows(home: Home) -> dict[str, dict]:
    return {r["name"]: r for r in home.json("market", "networks")["networks"]}


def test_networks_lists_every_preset_and_says_no_public_market_is_known(tmp_path):
    home = Home(tmp_path / "home")
    doc = home.json("market", "networks")
    by = {r["name"]: r for r in doc["networks"]}
    assert by["base"]["chain_id"] == 8453 and by["base"]["l1_data_fee"] and not by["base"]["testnet"]
    assert by["arbitrum"]["l1_fee"] == "in-gas" and not by["arbitrum"]["l1_data_fee"]
    assert by["sepolia"]["testnet"] and by["sepolia"]["explorer"] == "https://sepolia.etherscan.io"
    assert by["mainnet"]["official_ntk"] and all(r["official_ntk"] is None for n, r in by.items() if n != "mainnet")
    assert by["local"]["market"] == "embedded"
    assert {n for n, r in by.items() if r["has_market"]} == {"local"}
    assert "holesky" not in by
    said = doc["where_real_jobs_come_from"]
    assert "No market is known on any public network yet" in said and "no bridged NTK" in said
    text = home.run("market", "networks").stdout
    assert "base-sepolia" in text and "yes (OP-stack)" in text and "No market is known" in text


def test_a_users_deployment_file_names_a_market_and_a_corrupt_one_is_reported_not_used(tmp_path):
    home = Home(tmp_path / "home")
    home.chain_dir.mkdir(parents=True)
    good = {"chain_id": 84532, "ntk": "0x" + "11" * 20, "job_market": "0x" + "22" * 20,
            "model_market": "0x" + "33" * 20, "order_market": "0x" + "44" * 20, "block": 7, "deployer": "0x" + "55" * 20,
            "network": "base-sepolia"}
    (home.chain_dir / "deployment-84532.json").write_text(json.dumps(good))
    (home.chain_dir / "deployment-8453.json").write_bytes(b"{" * 100_000)  # hostile: deep and big
    (home.chain_dir / "deployment-10.json").write_text(json.dumps({**good, "chain_id": 1}))  # names another chain
    (home.chain_dir / "deployment-137.json").symlink_to("/etc/passwd")
    (home.chain_dir / "deployment-31337.json").write_text(json.dumps({**good, "chain_id": 31337}))  # a devnet's
    by = rows(home)
    assert by["base-sepolia"]["market"] == "yours" and by["base-sepolia"]["deployment"]["order_market"] == good[
        "order_market"]
    assert by["devnet"]["market"] == "yours" and by["devnet"]["deployment"]["chain_id"] == 31337
    for name in ("base", "optimism", "polygon"):
        assert by[name]["market"] == "none" and by[name]["problem"], name
        assert "\n" not in by[name]["problem"]
    said = home.json("market", "networks")["where_real_jobs_come_from"]
    assert "markets are known on: Devnet (your own node), Base Sepolia" in said or "Base Sepolia" in said
    text = home.run("market", "networks").stdout
    assert "base-sepolia: market yours" in text and "Traceback" not in text


@pytest.fixture
def op_anvil(anvil_factory, tmp_path):
    """anvil in OP-stack mode posing as Base Sepolia, with L1 fee parameters set."""
    node = anvil_factory(extra=("--network", "optimism", "--chain-id", "84532"))
    chain = Chain.rpc(node.url, expected_chain_id=84532, lock_dir=tmp_path / "locks")
    set_l1_block(chain, L1)
    return node, chain


@pytest.mark.slow
def test_deploy_on_an_op_stack_test_network_estimates_asks_and_writes_the_file_the_app_reads(op_anvil, tmp_path):
    node, chain = op_anvil
    home = Home(tmp_path / "home")
    net = ["--network", "base-sepolia", "--rpc-url", node.url]
    me = home.import_key(node.keys[3], net)
    pw = ["--password-file", str(home.dir / "pw.txt")]
    nonce0 = chain.w3.eth.get_transaction_count(me)

    r = home.run("market", "deploy", *net, *pw, ok=False)  # no terminal, no --yes: the estimate, then nothing
    assert r.returncode == 1 and "nothing was sent" in r.stderr and "Traceback" not in r.stderr
    assert "L1 data fee" in r.stdout and "estimated total" in r.stdout and "≈ $" in r.stdout
    assert chain.w3.eth.get_transaction_count(me) == nonce0 and not home.chain_dir.joinpath(
        "deployment-84532.json").exists()

    before = chain.balance_wei(me)
    out = home.json("market", "deploy", *net, *pw, "--yes")
    spent = before - chain.balance_wei(me)
    est = out["estimate"]
    assert est["chain_id"] == 84532 and int(est["l1_fee_wei"]) > 0 and len(est["contracts"]) == 4  # NTK + 3 markets
    assert 0.8 * spent <= int(est["total_wei"]) <= 1.5 * spent, (est["total_wei"], spent)
    assert est["total_usd"] == pytest.approx(int(est["total_wei"]) / 1e18 * 3000.0)
    assert chain.w3.eth.get_transaction_count(me) == nonce0 + 4
    path = Path(out["deployments_file"])
    assert path == home.chain_dir / "deployment-84532.json"
    saved = json.loads(path.read_text())
    assert saved["order_market"] == out["order_market"] and saved["network"] == "base-sepolia"
    assert chain.w3.eth.get_code(out["order_market"])
    assert rows(home)["base-sepolia"]["market"] == "yours"
    # the app uses it: the wallet finds its NTK on that network
    bal = home.json("wallet", "balance", *net)
    assert int(bal["ntk_wei"]) == 0 and bal["chain_id"] == 84532


@pytest.mark.slow
def test_deploy_on_a_main_network_needs_a_confirmed_token_and_says_no_bridged_ntk_is_official(anvil_factory,
                                                                                               tmp_path):
    node = anvil_factory(extra=("--chain-id", "8453"))
    chain = Chain.rpc(node.url, expected_chain_id=8453, lock_dir=tmp_path / "locks")
    home = Home(tmp_path / "home")
    net = ["--network", "base", "--rpc-url", node.url, "--password-file", str(tmp_path / "home" / "pw.txt")]
    me = home.import_key(node.keys[2], net[:4])
    r = home.run("market", "deploy", *net, "--yes", ok=False)
    assert r.returncode == 1 and "main network" in r.stderr and "confirm the address" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = home.run("market", "deploy", *net, "--yes", "--token", "0x" + "42" * 20, ok=False)
    assert r.returncode == 1 and "no contract at" in r.stderr
    r = home.run("market", "deploy", *net, "--yes", "--token", "not-an-address", ok=False)
    assert r.returncode == 1 and "not an Ethereum address" in r.stderr
    art = artifacts.load("NTK")  # stands for a bridged token the user confirmed
    token = chain.transact(Account.from_key(node.keys[0]), chain.w3.eth.contract(
        abi=art.abi_list(), bytecode=art.bytecode).constructor(NTK)).receipt["contractAddress"]
    nonce0 = chain.w3.eth.get_transaction_count(me)
    out = home.json("market", "deploy", *net, "--yes", "--token", token, "--coin-usd", "2500")
    assert out["ntk"] == token and out["network"] == "base"
    assert chain.w3.eth.get_transaction_count(me) == nonce0 + 3  # the three markets, no NTK of ours
    est = out["estimate"]
    assert est["coin_usd"] == 2500 and int(est["l1_fee_wei"]) == 0  # plain anvil charges no L1 fee
    assert any("no bridged NTK" in n for n in est["notes"])
    assert rows(home)["base"]["market"] == "yours"


@pytest.mark.slow
def test_deploy_asks_on_a_terminal_and_a_no_sends_nothing(anvil_factory, tmp_path):
    node = anvil_factory(extra=("--chain-id", "11155111"))
    home = Home(tmp_path / "home")
    net = ["--network", "sepolia", "--rpc-url", node.url, "--password-file", str(home.dir / "pw.txt")]
    me = home.import_key(node.keys[3], net[:4])
    chain = Chain.rpc(node.url, lock_dir=tmp_path / "locks")
    master, slave = os.openpty()
    try:
        os.write(master, b"n\n")
        r = home.run("market", "deploy", *net, ok=False, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 1 and "not confirmed" in r.stderr
    assert "Send these transactions?" in r.stdout and "estimated total" in r.stdout
    assert chain.w3.eth.get_transaction_count(me) == 0


def test_the_estimate_matches_what_deploying_costs_on_the_embedded_chain(tmp_path):
    from tests.wallet.conftest import make_tester_chain

    _tester, chain, accounts = make_tester_chain(tmp_path)
    net = Network("test-l1", chain.chain_id, label="in-memory chain")
    me = accounts[1]
    costs = estimate_deploy(chain, net, me.address)
    assert [c.action for c in costs] == ["deploy NTK", "deploy JobMarket", "deploy ModelMarket", "deploy OrderMarket"]
    assert all(c.l1_fee_wei == 0 for c in costs)
    before = chain.balance_wei(me.address)
    block0 = chain.w3.eth.block_number
    dep = deploy_market(chain, me, net)
    used = sum(chain.w3.eth.get_block(b, full_transactions=False)["gasUsed"]
               for b in range(block0 + 1, chain.w3.eth.block_number + 1))
    assert dep.order_market and before > chain.balance_wei(me.address)
    assert used <= sum(c.gas for c in costs) <= used * 13 // 10
