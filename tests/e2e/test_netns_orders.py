"""Orders and model sales between machines that share nothing: each user in a network
namespace of its own, with its own KMINER_HOME; every step a test checks is a `kminer` process
run inside its namespace; the only way between them is the network (order desk over HTTP,
sealed results peer to peer, the chain over JSON-RPC). One lab and one chain serve the module
(the `net` fixture): reachable machines a (buyer) and b (miner) and a server srv (anvil, a
relay) on an open network, and c and d each behind a home router's NAT.

The buyer posts one order of 2 shards on the OrderMarket (`order render --p2p`); the miner's
`kminer agent` claims both with signatures, renders them in its sandbox, seals and serves
them; the buyer's `order watch --p2p` samples frames after each commitment, re-renders them,
pays with vouchers the agent redeems in one transaction, gets the keys and unseals; `order
fetch --p2p` merges a dataset whose every frame verifies. The miner is killed while it serves
the first result and started again: the buyer still ends with verified bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import NTK, ROOT, tiny_scene
from tests.e2e.conftest import stop as _stop
from tests.netlab import open_network_with_homes_behind_nat, why_no_netlab
from tests.wallet.conftest import ANVIL

pytestmark = pytest.mark.slow


class NsHome:
    """One user in one namespace: own KMINER_HOME and password; runs `kminer` there."""

    def __init__(self, lab, role: str, root: Path, name: str, rpc: str, addr: str):
        self.lab, self.role, self.addr = lab, role, addr
        self.dir = root / name
        self.dir.mkdir()
        self.env = dict(os.environ, KMINER_HOME=str(self.dir), KMINER_PASSWORD=f"{name}-password")
        self.net = ["--network", "devnet", "--rpc-url", rpc]

    def argv(self, *args: str) -> list[str]:
        return self.lab.cmd(self.role, sys.executable, "-m", "cli", *args)

    def run(self, *args: str, ok: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        r = subprocess.run(self.argv(*args), cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, check=False)
        if ok:
            assert r.returncode == 0, f"kminer {' '.join(args)}: {r.stdout[-2500:]}\n{r.stderr[-2500:]}"
        return r

    def json(self, *args: str):
        return json.loads(self.run(*args, *self.net, "--json").stdout)

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=ROOT, env=self.env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def settle_transport(self) -> None:
        for k, v in (("listen_host", self.addr), ("advertise", self.addr), ("port_mapping", "false"),
                     ("redeem_after_minutes", "0")):
            self.run("settings", "set", f"transport.{k}", v)


def _wait_for(path: Path, text: str, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not in {path} after {timeout_s} s:\n{path.read_text(errors='replace')[-3000:]}")


class World:
    def __init__(self, lab, buyer, miner, dep, addr, procs):
        self.lab, self.buyer, self.miner, self.dep, self.addr, self.procs = lab, buyer, miner, dep, addr, procs


HOMES = (  # name, namespace, the namespace its address faces, devnet account, whose markets, NTK, NTK staked
    ("buyer", "a", "pub", 0, "buyer", 100, 0),  # reachable; deploys the markets
    ("miner", "b", "pub", 1, "buyer", 60, 50),  # reachable
    ("natminer", "c", "nc", 2, "buyer", 60, 50),  # behind the home router nc
    # the relay case on markets of its own (a listing of the same weights on the other
    # markets would be an earlier listing whose seller no longer serves it)
    ("natbuyer", "d", "nd", 3, "natbuyer", 100, 0),  # behind the home router nd; deploys markets
    ("seller", "c", "nc", 4, "natbuyer", 60, 50),  # behind nc too: sells a model through its relay
)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """One lab and one chain for the module (tests/netlab.py open_network_with_homes_behind_nat):
    reachable machines a and b and a server srv on the open network pub, c and d each behind
    its own home router (masquerade). Anvil (`kminer devnet`) runs on srv; the buyer in a
    deploys the markets, everyone else uses them (the relay case's two users use markets of
    their own); each user has its own KMINER_HOME with its transport on its own address
    (HOMES: who sits where, whose markets it uses, what it is funded with and stakes). The set-up's `kminer` commands run in one process in namespace a
    (tests/e2e/netns_world_setup.py); what the tests check runs as processes in each user's
    namespace."""
    why = why_no_netlab(nat=True)
    if why:
        pytest.skip(why)
    if not ANVIL.exists():
        pytest.fail(f"anvil not found at {ANVIL}: run `make node` (npm ci)")
    root = tmp_path_factory.mktemp("world")
    lab = open_network_with_homes_behind_nat()
    procs: list[subprocess.Popen] = []
    try:
        srv = lab.addrs[("srv", "pub")]
        node = lab.popen("srv", [sys.executable, "-m", "cli", "devnet", "--host", srv, "--port", "18545",
                                 "--accounts", str(len(HOMES)), "--keys-dir", str(root / "keys"), "--json"],
                         cwd=ROOT, stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        procs.append(node)
        info = json.loads(node.stdout.readline())
        url = info["rpc_url"]
        assert url == f"http://{srv}:18545"
        homes = {name: NsHome(lab, ns, root, name, url, lab.addrs[(ns, faces)]) for name, ns, faces, *_ in HOMES}
        spec = {"rpc": url, "keys": [x["key_file"] for x in info["accounts"]],
                "accounts": [x["address"] for x in info["accounts"]],
                "homes": [{"name": name, "dir": str(homes[name].dir), "password": homes[name].env["KMINER_PASSWORD"],
                           "addr": homes[name].addr, "account": acct, "markets_of": of, "ntk": ntk, "stake": stake}
                          for name, _, _, acct, of, ntk, stake in HOMES]}
        (root / "spec.json").write_text(json.dumps(spec))
        r = subprocess.run(lab.cmd("a", sys.executable, "-m", "tests.e2e.netns_world_setup", str(root / "spec.json")),
                           cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"world set-up: {r.stdout[-2500:]}\n{r.stderr[-2500:]}"
        done = json.loads(r.stdout.strip().splitlines()[-1])
        assert all(d["order_market"] for d in done["deployments"].values())
        yield lab, homes, done["deployments"], done["addresses"], srv
    finally:
        for p in reversed(procs):
            _stop(p)
        lab.close()


def _view(net, buyer: str, miner: str):
    """The module's world as one buyer and one miner see it; what a test starts is stopped when it ends."""
    lab, homes, deps, addr, _ = net
    procs: list[subprocess.Popen] = []
    try:
        yield World(lab, homes[buyer], homes[miner], deps[buyer], {"buyer": addr[buyer], "miner": addr[miner]}, procs)
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture
def world(net):
    """The buyer in a, the miner in b: both reachable on the open network."""
    yield from _view(net, "buyer", "miner")


@pytest.fixture
def nat_world(net):
    """The miner in c behind a home router (nc: masquerade, nothing gets in); the buyer in a, reachable."""
    yield from _view(net, "buyer", "natminer")


@pytest.fixture
def relay_world(net):
    """Buyer in d and seller in c, each behind its own home router (masquerade); the chain on
    the server srv on the open network between them, where the seller runs its relay."""
    yield from _view(net, "natbuyer", "seller")


def _list_model(seller, tmp_path: Path) -> tuple[Path, dict, int]:
    """The shipped product classifier listed peer to peer by `seller` at 3 NTK: (folder, card, listing id)."""
    folder = tmp_path / "model"
    shutil.copytree(ROOT / "resources" / "models" / "product-classifier", folder)
    card = json.loads((folder / "model_card.json").read_text())
    card.pop("seller", None)
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder, card, seller.json("models", "list-model", str(folder), "--price", "3", "--p2p")["listing_id"]


def _balance(home) -> int:
    return int(json.loads(home.run("wallet", "balance", *home.net, "--json").stdout)["ntk_wei"])


def test_a_two_shard_render_order_between_two_namespaces_survives_a_miner_restart(world, tmp_path):
    buyer, miner, procs = world.buyer, world.miner, world.procs
    miner.run("devices", "set-mode", "cpu", "mining")
    miner_before, buyer_before = _balance(miner), _balance(buyer)
    scene = tiny_scene(tmp_path, count=8)
    t0 = time.monotonic()
    posted = buyer.json("order", "render", str(scene), "--count", "8", "--shards", "2", "--reward", "2",
                        "--deadline-hours", "1", "--review-hours", "1", "--p2p", "--yes", "--no-watch")
    oid = posted["order_id"]
    watch = buyer.start("order", "watch", "--p2p", *buyer.net, "--until-idle", "--timeout", "400", "--interval",
                        "0.5", log=tmp_path / "watch.log")
    procs.append(watch)
    agent_log = tmp_path / "agent1.log"
    agent = miner.start("agent", *miner.net, "--interval", "0.5", log=agent_log)
    procs.append(agent)
    # kill the miner as soon as its first result is committed (it is serving it), then start it again
    _wait_for(agent_log, "result committed", 300)
    agent.kill()
    agent.wait()
    procs.append(miner.start("agent", *miner.net, "--interval", "0.5", log=tmp_path / "agent2.log"))
    assert watch.wait(420) == 0, (tmp_path / "watch.log").read_text()[-3000:]
    elapsed = time.monotonic() - t0
    got = tmp_path / "got"
    fetched = buyer.json("order", "fetch", str(oid), "--p2p", "--out", str(got))
    assert fetched["frame_ranges"] == [[0, 8]]
    from jobs.render.verify import verify_dataset

    assert verify_dataset(got, sample=4)["passed"]
    assert _balance(miner) == miner_before + 4 * NTK  # 2 x 2 NTK earned
    assert _balance(buyer) == buyer_before - 4 * NTK
    print(f"netns order of 2 shards, posted to verified bytes: {elapsed:.1f} s")


def test_a_model_sold_peer_to_peer_reaches_the_buyer_in_the_other_namespace(world, tmp_path):
    """The miner lists a model (card in the open, weights sealed) and serves it; the buyer buys
    it on chain and fetches it from the miner's machine."""
    buyer, miner, procs = world.buyer, world.miner, world.procs
    folder, card, lid = _list_model(miner, tmp_path)
    serve = miner.start("models", "serve", *miner.net, "--interval", "0.5", log=tmp_path / "serve.log")
    procs.append(serve)
    miner_before = _balance(miner)
    t1 = time.monotonic()
    buyer.run("models", "buy", str(lid), "--yes", *buyer.net)
    got_model = buyer.json("models", "fetch", str(lid))
    print(f"netns model purchase, bought to checked weights: {time.monotonic() - t1:.1f} s")
    weights = Path(got_model["folder"]) / card["weights"]["file"]
    assert weights.read_bytes() == (folder / card["weights"]["file"]).read_bytes()
    _stop(serve)
    assert serve.returncode == 0 and "bought by" in (tmp_path / "serve.log").read_text()
    assert _balance(miner) == miner_before + 3 * NTK


def test_a_miner_behind_nat_delivers_to_a_reachable_buyer(nat_world, tmp_path):
    """Nobody can dial the miner (a home router's NAT): it dials the buyer's node to deliver
    its sealed result, and the buyer's key requests (the sample before paying, the whole key
    after) reach its key service through the buyer's own desk, sealed to the buyer."""
    buyer, miner, procs, lab = nat_world.buyer, nat_world.miner, nat_world.procs, nat_world.lab
    probe = subprocess.run(lab.cmd("a", sys.executable, "-c", f"import socket; socket.create_connection(('{miner.addr}', 22), 3)"),
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "refused" not in probe.stderr.lower(), "the miner must not be reachable from a"
    miner.run("devices", "set-mode", "cpu", "mining")
    miner_before = _balance(miner)
    scene = tiny_scene(tmp_path, count=4)
    t0 = time.monotonic()
    posted = buyer.json("order", "render", str(scene), "--count", "4", "--shards", "1", "--reward", "3",
                        "--deadline-hours", "1", "--review-hours", "1", "--p2p", "--yes", "--no-watch")
    watch = buyer.start("order", "watch", "--p2p", *buyer.net, "--until-idle", "--timeout", "300", "--interval",
                        "0.5", log=tmp_path / "watch.log")
    procs.append(watch)
    agent_log = tmp_path / "agent.log"
    procs.append(miner.start("agent", *miner.net, "--interval", "0.5", log=agent_log))
    assert watch.wait(320) == 0, (tmp_path / "watch.log").read_text()[-3000:] + agent_log.read_text()[-3000:]
    elapsed = time.monotonic() - t0
    log = agent_log.read_text()
    assert "key request relayed through the buyer's desk" in log, log[-3000:]
    got = tmp_path / "got"
    buyer.json("order", "fetch", str(posted["order_id"]), "--p2p", "--out", str(got))
    from jobs.render.verify import verify_dataset

    assert verify_dataset(got, sample=2)["passed"]
    assert _balance(miner) == miner_before + 3 * NTK
    print(f"netns order with the miner behind NAT, posted to verified bytes: {elapsed:.1f} s")


def test_a_train_order_between_two_namespaces_pays_for_a_model_checked_on_held_out_images(world, tmp_path):
    """`order train --p2p --dataset DIR --holdout DIR`: the buyer keeps its held-out images, the
    agent trains on the data in its sandbox, the buyer measures the model on what it kept, pays,
    and `order fetch --p2p` writes a model folder that detects. (A fixed held-out set, not a
    random share: the outcome must not depend on the draw; the tolerance is wide because the
    card's figure comes from a 17-image validation split.)"""
    from jobs.train.infer import infer_paths, load_model
    from jobs.train.synthetic import make_shapes_dataset

    buyer, miner, procs = world.buyer, world.miner, world.procs
    miner.run("devices", "set-mode", "cpu", "mining")
    miner_before, buyer_before = _balance(miner), _balance(buyer)
    data = make_shapes_dataset(tmp_path / "shapes", n_images=70, size=(96, 72), seed=1)
    held = make_shapes_dataset(tmp_path / "held", n_images=30, size=(96, 72), seed=2)  # fixed: the outcome is too
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"lr": 0.01, "threads": 1, "seed": 3, "val_fraction": 0.25}))
    t0 = time.monotonic()
    posted = buyer.json("order", "train", "--p2p", "--dataset", str(data), "--holdout", str(held),
                        "--arch", "centernet-xs", "--epochs", "16", "--batch", "16", "--params", str(params),
                        "--tolerance", "0.5", "--min-metric", "0.2", "--reward", "2", "--deadline-hours", "1",
                        "--review-hours", "1", "--yes", "--no-watch")
    oid = posted["order_id"]
    watch = buyer.start("order", "watch", "--p2p", *buyer.net, "--until-idle", "--timeout", "400", "--interval",
                        "0.5", log=tmp_path / "watch.log")
    procs.append(watch)
    procs.append(miner.start("agent", *miner.net, "--interval", "0.5", log=tmp_path / "agent.log"))
    assert watch.wait(420) == 0, (tmp_path / "watch.log").read_text()[-3000:]
    elapsed = time.monotonic() - t0
    assert "sampled 2 item(s), verified" in (tmp_path / "watch.log").read_text()
    got = tmp_path / "model"
    assert buyer.json("order", "fetch", str(oid), "--p2p", "--out", str(got))["kind"] == "train"
    card = json.loads((got / "model_card.json").read_text())
    assert card["arch"] == "centernet-xs" and card["split"]["train_images"] + card["split"]["val_images"] == 70
    res = infer_paths(load_model(got), [data / f"images/{i:06d}.png" for i in range(4)], score_threshold=0.2)
    assert sum(len(r["detections"]) for r in res) >= 2
    assert _balance(miner) == miner_before + 2 * NTK
    assert _balance(buyer) == buyer_before - 2 * NTK
    print(f"netns train order, posted to a paid, unsealed model: {elapsed:.1f} s")


def test_a_model_sold_from_behind_nat_reaches_a_buyer_behind_nat_through_the_sellers_relay(relay_world, tmp_path):
    """Seller and buyer both behind home routers: nobody can dial either. The seller runs a
    relay on a server (`python -m jobs.transport relay`), names it in Settings → Transfers →
    Relays; the relay mirrors the card and the sealed model, and keeps the buyer's signed key
    request for the seller, who answers it through the relay, sealed to the buyer."""
    buyer, seller, procs, lab = relay_world.buyer, relay_world.miner, relay_world.procs, relay_world.lab
    srv = lab.addrs[("srv", "pub")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    relay = lab.popen("srv", [sys.executable, "-m", "jobs.transport", "relay", "--home", str(tmp_path / "relay"),
                              "--listen", "0.0.0.0:6881"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
                      stdin=subprocess.DEVNULL)
    procs.append(relay)
    assert json.loads(relay.stdout.readline())["peer_port"] == 6881
    seller.run("settings", "set", "transport.relays", f"{srv}:6881")
    folder, card, lid = _list_model(seller, tmp_path)
    serve = seller.start("models", "serve", *seller.net, "--interval", "0.5", log=tmp_path / "serve.log")
    procs.append(serve)
    t1 = time.monotonic()
    buyer.run("models", "buy", str(lid), "--yes", *buyer.net)
    got_model = buyer.json("models", "fetch", str(lid))
    print(f"netns model purchase, both behind NAT through a relay: {time.monotonic() - t1:.1f} s")
    weights = Path(got_model["folder"]) / card["weights"]["file"]
    assert weights.read_bytes() == (folder / card["weights"]["file"]).read_bytes()
    _stop(serve)
    log = (tmp_path / "serve.log").read_text()
    assert "through relay" in log and "answered" in log, log[-3000:]
