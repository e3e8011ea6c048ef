"""The set-up of tests/e2e/test_netns_orders.py's world in one process (not a test by itself).

    python -m tests.e2e.netns_world_setup SPEC.json

SPEC names the chain (`rpc`, the devnet's `keys` and `accounts`) and the users (`homes`: name,
folder, password, the devnet account to import, its transport address, whose markets it uses,
NTK from the faucet, NTK to stake). Every step is a `kminer` command, run through `cli.main.main` in this process, as
tests/e2e/nonroot_order_flow.py does (one start-up instead of some thirty; the steps are the
world's set-up, not what the tests check): every home imports its key; a home whose markets
are its own deploys them (listed before the homes that use them), every other one uses its
deployer's; each one's transport settings (listen/advertise on its own address, no port
mapping, redeem at once); each deployer funds the homes on its markets, the miners stake.
Prints one JSON document: the deployments (by deployer) and every home's address.
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
    homes = {h["name"]: h for h in spec["homes"]}
    deps: dict[str, dict] = {}
    for home in homes.values():  # deployers first: the others use their markets
        kminer(home, "wallet", "import", "--private-key-file", spec["keys"][home["account"]], *net)
        for k, v in (("listen_host", home["addr"]), ("advertise", home["addr"]), ("port_mapping", "false"),
                     ("redeem_after_minutes", "0")):
            kminer(home, "settings", "set", f"transport.{k}", v)
        if home["markets_of"] == home["name"]:
            deps[home["name"]] = json.loads(kminer(home, "market", "deploy", "--yes", *net, "--json"))
        else:
            dep = deps[home["markets_of"]]
            kminer(home, "market", "use", "--job-market", dep["job_market"], "--model-market", dep["model_market"],
                   "--order-market", dep["order_market"], *net)
    addrs = {name: spec["accounts"][h["account"]] for name, h in homes.items()}
    for name, home in homes.items():  # each deployer's token: its faucet
        kminer(homes[home["markets_of"]], "wallet", "faucet", "--to", addrs[name], "--ntk", str(home["ntk"]),
               "--eth", "0", *net)
    for home in homes.values():
        if home.get("stake"):
            kminer(home, "wallet", "stake", str(home["stake"]), "--yes", *net)
    print(json.dumps({"deployments": deps, "addresses": addrs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
