"""Agent fixtures: a real in-memory EVM with our contracts, a buyer with NTK, and a factory
for MinerService on the test's own app folders (CPU device in `mining`)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NTK = 10**18


def _kminer(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KMINER_HOME=str(home))
    env.pop("KMINER_PASSWORD", None)
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=180, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"kminer {' '.join(args)} failed: {r.stderr[-1500:]}"
    return r


@pytest.fixture(scope="session")
def rig_home(tmp_path_factory):
    """A home made by `kminer` processes once for the session: a buyer (who deployed the market
    on the embedded chain) and a miner wallet (1 ETH from the faucet), the CPU mining, password
    in pw.txt; (home, buyer, miner). Tests copy it (shutil.copytree: their own chain and queue)."""
    home = tmp_path_factory.mktemp("rig") / "home"
    home.mkdir()
    pw = home / "pw.txt"
    pw.write_text("agent-test-password\n")
    auth = ["--password-file", str(pw)]
    buyer = json.loads(_kminer(home, "wallet", "create", "--json", *auth).stdout)["address"]
    miner = json.loads(_kminer(home, "wallet", "create", "--json", *auth).stdout)["address"]
    _kminer(home, "wallet", "faucet", "--to", miner, "--ntk", "0", "--eth", "1", "--account", buyer, *auth)
    _kminer(home, "devices", "set-mode", "cpu", "mining")
    return home, buyer, miner


def render_spec_bytes(frames: int = 2, *, width: int = 96, height: int = 72, scene: str = "table_top") -> bytes:
    sc = json.loads((ROOT / "resources" / "scenes" / f"{scene}.json").read_text())
    sc["outputs"].update({"width": width, "height": height, "count": frames})
    spec = {"id": "table", "kind": "render", "params": {"scene": sc}, "resources": {"device": "cpu", "max_wall_s": 600}}
    return json.dumps(spec, sort_keys=True).encode()


@dataclass
class World:
    tmp: Path
    tester: object
    chain: object
    market: object
    deployer: object
    buyer: object
    miner: object
    other: object
    ctx: object
    devices: object
    ledger: object
    services: list = field(default_factory=list)

    def post(self, data: bytes, *, kind: str = "render", reward_ntk: float = 1, deadline_s: int = 7200,
             review_s: int = 600, name: str | None = None, spec_hash: str | None = None) -> int:
        """Write the spec file under the buyer's folder and post it; returns the job id."""
        f = self.tmp / "buyer" / (name or f"spec-{hashlib.sha256(data).hexdigest()[:12]}.json")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
        job_id, _ = self.market.post(self.buyer, kind=kind, spec_hash=spec_hash or "0x" + hashlib.sha256(data).hexdigest(),
                                     spec_uri=f.as_uri(), reward_wei=int(reward_ntk * NTK),
                                     deadline=self.chain.latest_timestamp() + deadline_s, review_window_s=review_s)
        return job_id

    def service(self, **kw):
        from app.miner import MinerService

        svc = MinerService(self.ctx, self.market, self.miner, self.devices, self.ledger, **kw)
        self.services.append(svc)
        return svc


def step_until(svc, job_id: int, states: set[str], timeout_s: float = 120, **kw) -> str:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        svc.step(**kw)
        r = svc.row(job_id)
        if r is not None and r.state in states:
            return r.state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stuck in {svc.row(job_id)}; last decisions {svc.pricing_decisions(3)}")


@pytest.fixture
def world(tmp_path):
    from app.context import AppContext
    from app.devices import DeviceService
    from app.earnings import Ledger
    from tests.wallet.conftest import make_tester_chain
    from wallet.deploy import deploy_all
    from wallet.market import MarketClient

    tester, chain, accounts = make_tester_chain(tmp_path)
    deployer, buyer, miner, other = accounts[:4]
    dep = deploy_all(chain, deployer)
    m = MarketClient(chain, dep)
    m.token.mint(deployer, buyer.address, 1000 * NTK)
    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.0
    ledger = Ledger(ctx.paths.ledger_db)
    w = World(tmp_path, tester, chain, m, deployer, buyer, miner, other, ctx, devs, ledger)
    yield w
    for svc in w.services:
        try:
            svc.close()
        except Exception:
            pass
    ledger.close()
    devs.close()


@pytest.fixture
def anvil():
    """A real anvil on 127.0.0.1 (free port), stopped after the test."""
    from tests.wallet.conftest import start_anvil, stop_anvil

    a = start_anvil()
    yield a
    stop_anvil(a)
