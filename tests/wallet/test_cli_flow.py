"""The issue's "done when": a buyer and a miner, separate processes with different accounts,
complete post -> claim -> submit -> accept through `kminer` on anvil and on the embedded
chain (where every command is a restart of the app and balances and events survive)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18
SPEC = "ab" * 32
RESULT = "0x" + "cd" * 32


class Party:
    """One user's `kminer` (own KMINER_HOME, own keystore), run as a fresh process per command."""

    def __init__(self, home: Path, password: str):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.pw_file = home / "pw.txt"
        self.pw_file.write_text(password + "\n")
        self.address: str | None = None

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, KMINER_HOME=str(self.home))
        env.pop("KMINER_PASSWORD", None)
        r = subprocess.run([sys.executable, "-m", "cli", *args, "--password-file", str(self.pw_file)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if ok:
            assert r.returncode == 0, f"kminer {' '.join(args)} failed: {r.stderr[-1500:]}"
        return r

    def json(self, *args: str):
        return json.loads(self.run(*args, "--json").stdout)


def _flow(buyer: Party, miner: Party, net: list[str], *, attacks: bool = True):
    job_ids = buyer.json("market", "post", "--kind", "render", "--spec-hash", SPEC, "--spec-uri", "file:///spec.json",
                         "--reward", "10", "--stake", "1", "--deadline-hours", "2", "--review-hours", "1", *net)["job_ids"]
    (job_id,) = job_ids
    miner.json("market", "claim", str(job_id), *net)
    if attacks:
        r = buyer.run("market", "submit", str(job_id), "--result-hash", RESULT, "--result-uri", "x", *net, ok=False)
        assert r.returncode == 1 and "NotMiner" in r.stderr and "Traceback" not in r.stderr
    miner.json("market", "submit", str(job_id), "--result-hash", RESULT, "--result-uri", "file:///result", *net)
    if attacks:
        r = miner.run("market", "accept", str(job_id), *net, ok=False)
        assert r.returncode == 1 and "NotBuyer" in r.stderr
    out = buyer.json("market", "accept", str(job_id), *net)
    assert out["job"]["status"] == "accepted" and out["job"]["result_hash"] == RESULT
    return job_id


@pytest.mark.slow
def test_buyer_and_miner_processes_on_anvil(anvil, tmp_path):
    buyer, miner = Party(tmp_path / "buyer", "buyer-pw"), Party(tmp_path / "miner", "miner-pw")
    for party, key in ((buyer, anvil.keys[1]), (miner, anvil.keys[2])):
        (party.home / "key.txt").write_text(key)
        party.address = party.json("wallet", "import", "--private-key-file", str(party.home / "key.txt"),
                                   "--network", "devnet")["address"]
    net = ["--network", "devnet", "--rpc-url", anvil.url]
    dep = buyer.json("market", "deploy", "--yes", *net)
    # the miner, on his own machine, points his app at the buyer's market
    miner.json("market", "use", "--job-market", dep["job_market"], "--model-market", dep["model_market"],
               "--from-block", str(dep["block"]), *net)
    buyer.json("wallet", "faucet", "--to", buyer.address, "--ntk", "100", "--eth", "0", *net)
    buyer.json("wallet", "send", "--to", miner.address, "--amount", "5", *net)  # the miner's stake money
    _flow(buyer, miner, net, attacks=False)  # the refusals are covered on the embedded chain
    assert int(miner.json("wallet", "balance", *net)["ntk_wei"]) == 15 * NTK
    assert int(miner.json("wallet", "balance", buyer.address, *net)["ntk_wei"]) == 85 * NTK
    hist = miner.json("wallet", "history", *net)
    assert {"JobClaimed", "ResultSubmitted", "JobAccepted"} <= {e["name"] for e in hist}


@pytest.mark.slow
def test_buyer_and_miner_processes_on_embedded_chain_across_restarts(tmp_path):
    # one machine, one app home, two accounts: each command is a new process re-opening the chain
    home = tmp_path / "home"
    buyer, miner = Party(home, "buyer-pw"), Party(home, "buyer-pw")
    buyer.address = buyer.json("wallet", "create")["address"]  # first start: chain created, contracts deployed
    miner_pw = home / "miner-pw.txt"
    miner_pw.write_text("miner-pw\n")
    miner.pw_file = miner_pw
    miner.address = miner.json("wallet", "create")["address"]
    b0 = buyer.json("wallet", "balance")
    assert int(b0["ntk_wei"]) == 1_000_000 * NTK and b0["chain_id"] == 27501
    buyer.json("wallet", "faucet", "--to", miner.address, "--ntk", "3", "--eth", "1")
    buyer_run, miner_run = buyer.run, miner.run
    buyer.run = lambda *a, ok=True: buyer_run(*a, "--account", buyer.address, ok=ok)
    miner.run = lambda *a, ok=True: miner_run(*a, "--account", miner.address, ok=ok)
    job_id = _flow(buyer, miner, [])
    # a fresh process sees everything that happened
    assert int(miner.json("wallet", "balance")["ntk_wei"]) == 13 * NTK
    assert int(buyer.json("wallet", "balance")["ntk_wei"]) == (1_000_000 - 10) * NTK  # the faucet mints; it does not spend the buyer's NTK
    rep = miner.json("market", "reputation")
    assert (rep["completed"], rep["rejected"], rep["expired"]) == (1, 0, 0)
    names = [e["name"] for e in miner.json("wallet", "history") if e["job_id"] == job_id]
    assert names == ["JobAccepted", "ResultSubmitted", "JobClaimed"]
    # a wrong password is a one-line error and changes nothing
    miner.pw_file = home / "bad.txt"
    miner.pw_file.write_text("nope\n")
    r = miner.run("wallet", "send", "--to", buyer.address, "--amount", "1", ok=False)
    assert r.returncode == 1 and "wrong password" in r.stderr and "Traceback" not in r.stderr
