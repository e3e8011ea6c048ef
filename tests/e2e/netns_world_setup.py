"""The set-up of tests/e2e/test_netns_orders.py's world in one process (not a test by itself).

    python -m tests.e2e.netns_world_setup SPEC.json

SPEC names the chain (`rpc`, the devnet's `keys` and `accounts`) and the users (`homes`: name,
folder, password, the devnet account to import, its transport address, NTK from the faucet, NTK
to stake). Every step is a `kminer` command, run through `cli.main.main` in this process, as
tests/e2e/nonroot_order_flow.py does (one start-up instead of some thirty; the steps are the
world's set-up, not what the tests check): the first home imports its key and deploys the
markets, every other one imports its key and uses them; each one's transport settings
(listen/advertise on its own address, no port mapping, redeem at once); the first home funds
everyone, the miners stake. Prints one JSON document: the deployment and every home's address.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path


def kminer(home: dict, *args: str) -> str:
    """`kminer ARGS` in this process with `home`'s folder and password; its stdout (fails loudly)."""
    from cli.main import main

    os.environ.update(KMINER_HOME=home["dir"], KMINER_PASSWORD=home["password"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    if rc != 0:
        raise SystemExit(f"{home['name']}: kminer {' '.join(args)} -> {rc}\n{out.getvalue()[-2000:]}\n{err.getvalue()[-2000:]}")
    return out.getvalue()


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    net = ["--network", "devnet", "--rpc-url", spec["rpc"]]
    homes = spec["homes"]
    dep: dict = {}
    for i, home in enumerate(homes):
        kminer(home, "wallet", "import", "--private-key-file", spec["keys"][home["account"]], *net)
        for k, v in (("listen_host", home["addr"]), ("advertise", home["addr"]), ("port_mapping", "false"),
                     ("redeem_after_minutes", "0")):
            kminer(home, "settings", "set", f"transport.{k}", v)
        if i == 0:
            dep = json.loads(kminer(home, "market", "deploy", "--yes", *net, "--json"))
        else:
            kminer(home, "market", "use", "--job-market", dep["job_market"], "--model-market", dep["model_market"],
                   "--order-market", dep["order_market"], *net)
    addrs = {h["name"]: spec["accounts"][h["account"]] for h in homes}
    for home in homes:
        kminer(homes[0], "wallet", "faucet", "--to", addrs[home["name"]], "--ntk", str(home["ntk"]), "--eth", "0", *net)
    for home in homes:
        if home.get("stake"):
            kminer(home, "wallet", "stake", str(home["stake"]), "--yes", *net)
    print(json.dumps({"deployment": dep, "addresses": addrs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
