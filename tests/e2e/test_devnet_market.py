"""The market across real processes on a devnet, as docs/walkthrough-market.md runs it:
`kminer devnet` (anvil on 127.0.0.1), a buyer, an honest miner (`kminer agent`) and a
cheating miner, each a separate KMINER_HOME, every step a `kminer` subprocess.

- the buyer posts a render order in 2 shards; the agent claims, renders and submits; the
  buyer's `order watch` verifies, accepts and merges; the miner is paid exactly the rewards;
- a cheater claims a shard by hand and submits a tampered dataset (`kminer market
  claim/submit`): `order watch` rejects it with the figures, the cheater is not paid and the
  reward goes back to the buyer;
- a buyer who never answers: after the review window (anvil time moved on with
  evm_increaseTime + evm_mine) the agent releases its own payment.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import NTK, ROOT, SHELF, tiny_scene
from tests.e2e.conftest import stop as _stop
from tests.wallet.conftest import ANVIL, free_port

pytestmark = pytest.mark.slow


class Home:
    """One user of the app: own KMINER_HOME and password; runs `kminer` subprocesses."""

    def __init__(self, root: Path, name: str, rpc: str):
        self.dir = root / name
        self.dir.mkdir()
        self.env = dict(os.environ, KMINER_HOME=str(self.dir), KMINER_PASSWORD=f"{name}-password")
        self.net = ["--network", "devnet", "--rpc-url", rpc]

    def run(self, *args: str, ok: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
        if ok:
            assert r.returncode == 0, f"kminer {' '.join(args)}: {r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        return r

    def json(self, *args: str) -> dict | list:
        return json.loads(self.run(*args, *self.net, "--json").stdout)

    def ntk(self) -> int:
        """NTK balance as `kminer wallet balance` shows it."""
        return int(self.json("wallet", "balance")["ntk_wei"])

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=self.env,
                                stdout=open(log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _rpc(url: str, method: str, params: list) -> object:
    req = urllib.request.Request(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode(),
                                 {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["result"]


def _wait(what: str, fn, timeout_s: float = 120, every_s: float = 0.5):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(every_s)
    raise AssertionError(f"timed out waiting for {what}")


def _miner_rows(home: Home) -> dict:
    """The miner's market jobs as its agent recorded them (job id -> MarketJobRow)."""
    from app.miner.db import MinerDB

    db = MinerDB(home.dir / "data" / "miner.sqlite")
    try:
        return {r.job_id: r for r in db.rows()}
    finally:
        db.close()


def _tamper(dataset: Path) -> None:
    """Grey out every delivered image and fix up the metadata hashes, so the dataset is
    consistent in itself and only a re-render can tell."""
    from PIL import Image

    from common.fsutil import sha256_bytes

    for meta_path in sorted((dataset / "meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        img = dataset / meta["files"]["rgb"]
        w, h = Image.open(img).size
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (128, 128, 128)).save(buf, format="PNG")
        img.write_bytes(buf.getvalue())
        meta["sha256"]["rgb"] = sha256_bytes(buf.getvalue())
        meta_path.write_text(json.dumps(meta, separators=(",", ":")) + "\n")


def test_devnet_buyer_and_agent_processes_honest_cheating_and_silent(tmp_path):
    from jobs.artifacts import ArtifactStore

    if not ANVIL.exists():
        pytest.fail(f"anvil not found at {ANVIL}: run `make node` (npm ci)")
    t_start = time.monotonic()
    port = free_port()
    node = subprocess.Popen([sys.executable, "-m", "cli", "devnet", "--port", str(port), "--keys-dir",
                             str(tmp_path / "keys"), "--json"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    procs: list[subprocess.Popen] = []
    try:
        info = json.loads(node.stdout.readline())
        url = info["rpc_url"]
        keys = [a["key_file"] for a in info["accounts"]]
        buyer, miner, cheater = (Home(tmp_path, n, url) for n in ("buyer", "miner", "cheater"))
        for home, key in ((buyer, keys[0]), (miner, keys[1]), (cheater, keys[2])):
            home.run("wallet", "import", "--private-key-file", key, *home.net)
        dep = buyer.json("market", "deploy", "--yes")
        for home in (miner, cheater):
            home.run("market", "use", "--job-market", dep["job_market"], "--model-market", dep["model_market"], *home.net)
        from wallet.chain import Chain
        from wallet.deploy import Deployment
        from wallet.market import MarketClient

        # the test reads the chain itself (fewer app start-ups); every action is a kminer process
        fields = Deployment.__dataclass_fields__  # the reply carries the estimate and the file's path beside them
        market = MarketClient(Chain.rpc(url, lock_dir=tmp_path / "locks"), Deployment(**{k: dep[k] for k in fields}))
        addr = {h: a["address"] for h, a in zip(("buyer", "miner", "cheater"), info["accounts"])}

        def bal(who: str) -> int:
            return market.token.balance_of(addr[who])

        def status(job_id: int) -> str:
            return market.job(job_id).status.name.lower()

        buyer.run("wallet", "faucet", "--to", info["accounts"][0]["address"], "--ntk", "100", "--eth", "0", *buyer.net)
        miner.run("devices", "set-mode", "cpu", "mining")
        scene = tiny_scene(tmp_path, SHELF, count=4)
        b0, m0, c0 = buyer.ntk(), bal("miner"), bal("cheater")
        assert (b0, m0, c0) == (100 * NTK, 0, 0)

        # 1) honest: agent process + buyer's watch process
        t1 = time.monotonic()
        o1 = buyer.json("order", "render", str(scene), "--count", "4", "--shards", "2", "--reward", "2",
                        "--deadline-hours", "1", "--review-hours", "1", "--job-market")  # the order market is the default
        agent = miner.start("agent", *miner.net, "--interval", "0.5", log=tmp_path / "agent1.log")
        procs.append(agent)
        w = buyer.run("order", "watch", *buyer.net, "--until-idle", "--timeout", "200", "--interval", "0.5")
        o1 = buyer.json("order", "show", str(o1["id"]))
        assert o1["state"] == "done", w.stdout[-3000:]
        assert [(s["state"], s["figures"]["mode"], s["figures"]["rgb_mad_max"]) for s in o1["shards"]] == \
            [("accepted", "exact", 0.0)] * 2
        assert "accepted, 2 NTK paid" in w.stdout and "4 frames merged" in w.stdout
        _wait("the agent to see both payments",
              lambda: [r.state for r in _miner_rows(miner).values()] == ["paid", "paid"])
        honest_wall = time.monotonic() - t1
        _stop(agent)
        assert bal("miner") - m0 == 4 * NTK and b0 - bal("buyer") == 4 * NTK
        got = tmp_path / "dataset"
        buyer.run("order", "fetch", str(o1["id"]), "--out", str(got), *buyer.net)
        assert len(list((got / "images").iterdir())) == 4

        # 2) a cheater claims a shard, renders it, tampers with the images and submits that
        b1 = bal("buyer")
        o2 = buyer.json("order", "render", str(scene), "--count", "2", "--shards", "1", "--reward", "3",
                        "--deadline-hours", "1", "--review-hours", "1", "--job-market")
        job2 = o2["shards"][0]["job_id"]
        cheater.run("market", "claim", str(job2), *cheater.net)
        cstore = ArtifactStore(cheater.dir / "data" / "artifacts")
        j2 = market.job(job2)
        spec = tmp_path / "cheat-spec.json"
        spec.write_bytes(cstore.fetch(j2.spec_hash.removeprefix("0x"), j2.spec_uri).read_bytes())
        out = json.loads(cheater.run("job", "run", str(spec), "--json").stdout)
        fake = tmp_path / "fake"
        cstore.materialize(out["output_sha256"], fake, kind="dir")
        _tamper(fake)
        sha = cstore.put_dir(fake)
        cheater.run("market", "submit", str(job2), "--result-hash", sha, "--result-uri", cstore.path(sha).as_uri(),
                    *cheater.net)
        w = buyer.run("order", "watch", *buyer.net, "--until-idle", "--timeout", "120", "--interval", "0.5")
        o2 = buyer.json("order", "show", str(o2["id"]))
        s = o2["shards"][0]
        assert o2["state"] == "stalled" and s["state"] == "rejected" and s["verified"] is False, w.stdout[-3000:]
        assert s["figures"]["mode"] == "exact" and s["figures"]["rgb_mad_max"] > 10 and s["figures"]["exact_matches"] == 0
        assert "REJECTED" in w.stdout and f"repost {o2['id']}" in o2["reason"]
        assert status(job2) == "rejected"
        assert bal("cheater") == c0 and bal("buyer") == b1  # not paid; the reward came back

        # 3) a buyer who never answers: the agent releases its payment after the review window
        o3 = buyer.json("order", "render", str(scene), "--count", "2", "--shards", "1", "--reward", "2",
                        "--deadline-hours", "1", "--review-hours", str(10 / 3600), "--job-market")
        job3 = o3["shards"][0]["job_id"]
        m1 = bal("miner")
        agent = miner.start("agent", *miner.net, "--interval", "0.5", log=tmp_path / "agent2.log")
        procs.append(agent)
        _wait("the agent's result", lambda: status(job3) == "submitted")
        _rpc(url, "evm_increaseTime", [30])
        _rpc(url, "evm_mine", [])
        _wait("the agent to release", lambda: status(job3) == "released", 60)
        assert bal("miner") - m1 == 2 * NTK
        _wait("the agent to note the payment", lambda: _miner_rows(miner)[job3].state == "paid")
        _stop(agent)
        # the buyer comes back later: the result is verified for the record, nothing more is paid
        b2 = bal("buyer")
        buyer.run("order", "watch", *buyer.net, "--until-idle", "--timeout", "120", "--interval", "0.5")
        s3 = buyer.json("order", "show", str(o3["id"]))["shards"][0]
        assert s3["state"] == "released" and s3["verified"] is True and bal("buyer") == b2

        rows = _miner_rows(miner)
        c2p = [rows[j].first_progress_at - rows[j].claimed_at for j in (1, 2)]
        r2p = [rows[j].paid_at - rows[j].uploaded_at for j in (1, 2)]
        print(f"\ndevnet e2e: total {time.monotonic() - t_start:.1f} s; honest 2-shard order post->all paid "
              f"{honest_wall:.1f} s; claim->first progress {min(c2p):.2f}-{max(c2p):.2f} s; result->payment "
              f"(buyer verifies and accepts) {min(r2p):.2f}-{max(r2p):.2f} s; silent buyer: result->release "
              f"{rows[job3].paid_at - rows[job3].uploaded_at:.2f} s (10 s window, time moved 30 s)")
    finally:
        for p in procs:
            _stop(p)
        _stop(node, signal.SIGINT)
        assert node.returncode == 0
