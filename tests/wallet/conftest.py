"""Wallet fixtures: a real in-memory EVM (eth-tester/py-evm) with our contracts, anvil.

`market_env` deploys NTK, JobMarket and ModelMarket once per module on an in-memory chain
(eth-tester's funded tester keys) and reverts to that snapshot after each test, so every
test starts from the same state. `anvil` starts a real anvil on 127.0.0.1 (free port) and
stops it afterwards.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
NTK = 10**18


@dataclass
class MarketEnv:
    tester: object
    chain: object
    deployment: object
    market: object
    accounts: list  # LocalAccount; [0] deployer, [1] buyer, [2] miner, [3] stranger

    @property
    def deployer(self):
        return self.accounts[0]

    @property
    def buyer(self):
        return self.accounts[1]

    @property
    def miner(self):
        return self.accounts[2]

    @property
    def stranger(self):
        return self.accounts[3]

    def now(self) -> int:
        return self.chain.latest_timestamp()

    def travel(self, seconds: int) -> None:
        """Mine a block `seconds` after the latest one (in-memory chain only)."""
        self.tester.time_travel(self.now() + seconds)


def make_tester_chain(tmp_path: Path):
    from eth_account import Account
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import Web3
    from web3.providers.eth_tester import EthereumTesterProvider

    from wallet.chain import Chain

    backend = PyEVMBackend()
    tester = EthereumTester(backend=backend, auto_mine_transactions=True)
    w3 = Web3(EthereumTesterProvider(tester))
    accounts = [Account.from_key(k.to_bytes()) for k in backend.account_keys[:6]]
    w3.eth.default_account = accounts[0].address
    chain = Chain(w3, embedded=True, label="in-memory test chain", lock_dir=tmp_path / "locks")
    return tester, chain, accounts


def _deployed(tmp_path_factory):
    """(tester, chain, deployment, accounts) with every contract deployed and 1,000 NTK for
    every account but the deployer."""
    from wallet.deploy import deploy_all
    from wallet.token import TokenClient

    tester, chain, accounts = make_tester_chain(tmp_path_factory.mktemp("chain"))
    dep = deploy_all(chain, accounts[0])
    token = TokenClient(chain, dep.ntk)
    for a in accounts[1:]:
        token.mint(accounts[0], a.address, 1_000 * NTK)
    return tester, chain, dep, accounts


def _reverting(env):
    """Yield the module's env, then put its chain back as it was (every test starts alike)."""
    snap = env.tester.take_snapshot()
    yield env
    env.tester.revert_to_snapshot(snap)


@pytest.fixture(scope="module")
def _market_module(tmp_path_factory):
    from wallet.market import MarketClient

    tester, chain, dep, accounts = _deployed(tmp_path_factory)
    return MarketEnv(tester, chain, dep, MarketClient(chain, dep), accounts)


@pytest.fixture
def market_env(_market_module):
    yield from _reverting(_market_module)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Anvil:
    url: str
    port: int
    process: subprocess.Popen
    keys: list[str]


ANVIL_KEYS = [  # anvil's well-known dev keys for its default mnemonic (test-only, hold no value)
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]


def start_anvil(port: int | None = None, extra: tuple[str, ...] = ()) -> Anvil:
    if not ANVIL.exists():
        pytest.fail(f"anvil not found at {ANVIL}: run `make node` (npm ci)")
    port = port or free_port()
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"anvil exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Anvil(f"http://127.0.0.1:{port}", port, proc, list(ANVIL_KEYS))
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("anvil did not start in 20 s")


def stop_anvil(a: Anvil) -> None:
    if a.process.poll() is None:
        a.process.terminate()
        try:
            a.process.wait(5)
        except subprocess.TimeoutExpired:
            a.process.kill()
            a.process.wait()


@pytest.fixture
def anvil():
    a = start_anvil()
    yield a
    stop_anvil(a)


@pytest.fixture
def anvil_factory():
    """start(port=None) -> Anvil; every anvil started is stopped after the test."""
    started: list[Anvil] = []

    def start(port: int | None = None, extra: tuple[str, ...] = ()) -> Anvil:
        a = start_anvil(port, extra)
        started.append(a)
        return a

    start.stop = stop_anvil
    start.free_port = free_port
    yield start
    for a in started:
        stop_anvil(a)


def node_available() -> bool:
    return shutil.which("node") is not None and (ROOT / "node_modules" / "solc").exists()



@dataclass
class OrderEnv:
    """An OrderMarket on the in-memory chain: accounts [0] deployer, [1] buyer, [2] miner (its
    mining key), [3] payout (the miner's main address), [4] stranger, [5] second miner."""

    tester: object
    chain: object
    deployment: object
    om: object  # OrderMarketClient
    accounts: list

    buyer = property(lambda self: self.accounts[1])
    miner = property(lambda self: self.accounts[2])
    payout = property(lambda self: self.accounts[3])
    stranger = property(lambda self: self.accounts[4])
    miner2 = property(lambda self: self.accounts[5])

    def now(self) -> int:
        return self.chain.latest_timestamp()

    def travel(self, seconds: int) -> None:
        self.tester.time_travel(self.now() + seconds)

    def balance(self, who) -> int:
        return self.om.token.balance_of(who if isinstance(who, str) else who.address)


@pytest.fixture(scope="module")
def _order_module(tmp_path_factory):
    from wallet.order_market import OrderMarketClient

    tester, chain, dep, accounts = _deployed(tmp_path_factory)
    return OrderEnv(tester, chain, dep, OrderMarketClient(chain, dep.order_market), accounts)


@pytest.fixture
def order_env(_order_module):
    yield from _reverting(_order_module)
