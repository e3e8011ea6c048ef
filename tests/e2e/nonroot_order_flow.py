"""The order flow as one unprivileged user, driven from inside its own namespaces
(tests/e2e/test_nonroot_orders.py runs it with tests/jobs/as_user.py; not a test by itself).

    python -m tests.e2e.nonroot_order_flow WORK CHAIN_HOST MINER_HOST

Every step is a `kminer` command: the set-up ones (import keys, deploy, fund, stake, settings)
and the buyer's short ones run through `cli.main.main` in this process (one start-up instead of
a dozen), the long-running ones as their own processes: `kminer devnet` (anvil), the miner's
`kminer agent` and the buyer's `kminer order watch`. The buyer posts with a plain `kminer
order render` (no market flag: the chain is not on loopback, so the order market is the
default). Prints one JSON document of what each step said, for the test to check.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.e2e.conftest import ROOT, tiny_scene
from tests.e2e.conftest import stop as _stop


class Home:
    def __init__(self, work: Path, name: str, host: str, rpc: str):
        self.name, self.host = name, host
        self.dir = work / name
        self.dir.mkdir()
        self.env = {"KMINER_HOME": str(self.dir), "KMINER_PASSWORD": f"{name}-password"}
        self.net = ["--network", "devnet", "--rpc-url", rpc]

    def main(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        """`kminer ARGS` in this process, with this home."""
        from cli.main import main

        os.environ.update(self.env)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
        if ok and rc != 0:
            raise SystemExit(f"{self.name}: kminer {' '.join(args)} -> {rc}\n{out.getvalue()[-2000:]}\n{err.getvalue()[-2000:]}")
        return rc, out.getvalue(), err.getvalue()

    def json(self, *args: str):
        return json.loads(self.main(*args, *self.net, "--json")[1])

    def start(self, *args: str, log: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env={**os.environ, **self.env},
                                stdout=open(log, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def posted_desk(posted: dict) -> tuple[str, int]:
    u = urlsplit(posted["desk"])
    return u.hostname, u.port


def _wait_port(addr: tuple[str, int], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            socket.create_connection(addr, timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def main() -> int:
    work, chain_host, miner_host = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    t0 = time.monotonic()
    out: dict = {"uid": os.getuid(), "timings": {}}
    procs: list[subprocess.Popen] = []
    node = subprocess.Popen([sys.executable, "-m", "cli", "devnet", "--host", chain_host, "--port", "18545",
                             "--keys-dir", str(work / "keys"), "--json"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        info = json.loads(node.stdout.readline())
        url = info["rpc_url"]
        keys = [a["key_file"] for a in info["accounts"]]
        addr = {"buyer": info["accounts"][0]["address"], "miner": info["accounts"][1]["address"]}
        buyer, miner = Home(work, "buyer", chain_host, url), Home(work, "miner", miner_host, url)
        for home, key in ((buyer, keys[0]), (miner, keys[1])):
            home.main("wallet", "import", "--private-key-file", key, *home.net)
            for k, v in (("listen_host", home.host), ("advertise", home.host), ("port_mapping", "false"),
                         ("redeem_after_minutes", "0")):
                home.main("settings", "set", f"transport.{k}", v)
        dep = buyer.json("market", "deploy", "--yes")
        miner.main("market", "use", "--job-market", dep["job_market"], "--model-market", dep["model_market"],
                   "--order-market", dep["order_market"], *miner.net)
        buyer.main("wallet", "faucet", "--to", addr["buyer"], "--ntk", "100", "--eth", "0", *buyer.net)
        buyer.main("wallet", "faucet", "--to", addr["miner"], "--ntk", "60", "--eth", "0", *buyer.net)
        miner.main("wallet", "stake", "50", "--yes", *miner.net)
        miner.main("devices", "set-mode", "cpu", "mining")
        scene = tiny_scene(work, count=4)
        out["timings"]["setup_s"] = round(time.monotonic() - t0, 1)

        t1 = time.monotonic()
        out["posted"] = buyer.json("order", "render", str(scene), "--count", "4", "--shards", "1", "--reward", "2",
                                   "--deadline-hours", "1", "--review-hours", "1", "--yes", "--no-watch")
        agent_log, watch_log = work / "agent.log", work / "watch.log"
        # the buyer's watch serves the order desk (this home has an open order there); the agent
        # starts once it answers (else it asks again only after app.orders.miner.DESK_RETRY_S)
        watch = buyer.start("order", "watch", *buyer.net, "--until-idle", "--timeout", "120", "--interval", "0.5",
                            log=watch_log)
        procs.append(watch)
        out["desk_up"] = _wait_port(posted_desk(out["posted"]), 60)
        # a second watch meanwhile: the desk is served by the first, this one says so and goes on
        out["second_watch"] = buyer.main("order", "watch", *buyer.net, "--until-idle", "--timeout", "20", ok=False)
        agent = miner.start("agent", *miner.net, "--interval", "0.5", log=agent_log)
        procs.append(agent)
        try:
            out["watch_rc"] = watch.wait(150)
        except subprocess.TimeoutExpired:
            out["watch_rc"] = _stop(watch)
        out["timings"]["posted_to_unsealed_s"] = round(time.monotonic() - t1, 1)
        out["watch_log"] = watch_log.read_text(errors="replace")[-4000:]
        oid = out["posted"]["order_id"]
        out["show"] = buyer.json("order", "show", str(oid))
        out["show_text"] = buyer.main("order", "show", f"p2p:{oid}", *buyer.net)[1]
        out["list"] = buyer.json("order", "list")
        out["fetch"] = buyer.json("order", "fetch", str(oid), "--out", str(work / "dataset"))
        # the agent redeems the voucher (redeem_after_minutes 0) and sends the key: wait until the
        # miner's balance shows the payment, then stop it
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out["balances"] = {h.name: int(h.json("wallet", "balance")["ntk_wei"]) for h in (buyer, miner)}
            if out["balances"]["miner"] >= 12 * 10**18:
                break
            time.sleep(0.5)
        out["agent_rc"] = _stop(agent)
        text = agent_log.read_text(errors="replace")
        # the status line while the shard rendered, and what the earnings say the order market paid
        out["agent_shard_lines"] = [ln for ln in text.splitlines() if " order p2p:" in ln][:3]
        out["earnings"] = json.loads(miner.main("earnings", "--days", "1", "--json")[1])
        out["agent_log"] = text if len(text) < 6000 else text[:2000] + "\n[...]\n" + text[-4000:]
        out["timings"]["total_s"] = round(time.monotonic() - t0, 1)
    finally:
        for p in procs:
            _stop(p)
        out["devnet_rc"] = _stop(node, signal.SIGINT)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
