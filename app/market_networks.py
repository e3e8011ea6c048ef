"""Which networks have a market, and so where real jobs come from: the network presets
(wallet.networks) beside the markets known on each (the project's resources/data/deployments.json
and the deployment files in the user's chain folder).

Plain data for every face: `kminer market networks`, the first-run wizard, the wallet page.
Reading is bounded and never raises for a bad file: an unreadable deployment file is reported
on its network's row (`problem`), not trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wallet.deploy import Deployment, known_deployments, load_deployment
from wallet.errors import WalletError
from wallet.networks import NETWORKS, Network

MAX_DEPLOYMENT_FILES = 256
"""At most this many deployment-<chain id>.json files are looked at in the chain folder."""
_FILE = re.compile(r"^deployment-(\d{1,20})\.json$")

NO_OFFICIAL_BRIDGED_NTK = ("NTK is official only on Ethereum mainnet; no bridged NTK on an L2 or sidechain is "
                           "official: a market there pays in a token whose address you confirm yourself.")


@dataclass(frozen=True)
class NetworkMarket:
    """One network preset and the market known on it."""

    name: str
    label: str
    chain_id: int | None
    testnet: bool
    layer: str
    l1_data_fee: bool
    """True on OP-stack chains: a separate L1 data fee is part of every transaction's cost."""
    l1_fee: str | None
    native_symbol: str
    explorer: str | None
    embedded: bool
    official_ntk: str | None
    """The official NTK address here (Ethereum mainnet only), else None."""
    market: str
    """'embedded' (the app's own chain: deployed on first start, test NTK), 'yours' (a deployment
    file in your data folder), 'known' (the project lists one), or 'none'."""
    deployment: Deployment | None = None
    problem: str | None = None
    """A deployment file for this network that could not be read (it is not used)."""

    @property
    def has_market(self) -> bool:
        return self.market != "none"

    @property
    def market_text(self) -> str:
        d = self.deployment
        at = f" (OrderMarket {d.order_market})" if d is not None and d.order_market else ""
        return {"embedded": "the app's own test market, on this computer only",
                "yours": f"yours: a deployment file in your data folder{at}",
                "known": f"known to the project{at}",
                "none": "none known"}[self.market]

    @property
    def jobs_text(self) -> str:
        """Where jobs on this network come from, in one sentence."""
        if self.market == "embedded":
            return "Only the jobs you post yourself on this computer (test NTK, no real value)."
        if self.market == "none":
            return ("No jobs: no market is known here. Deploy one (`kminer market deploy --network "
                    f"{self.name}`) or import the deployment file of whoever runs one.")
        return "Jobs that buyers post on this market, for whoever shares it with them."


def market_networks(chain_dir: Path, *, known: dict[str, Deployment] | None = None) -> list[NetworkMarket]:
    """Every network preset with the market known on it, in the presets' order. `chain_dir`
    holds the user's deployment files (AppPaths.chain_dir)."""
    try:
        known = known_deployments() if known is None else known
    except WalletError:
        known = {}
    mine, problems = _user_deployments(Path(chain_dir))
    by_chain = {n.chain_id: n.name for n in NETWORKS.values() if n.chain_id is not None}
    rows = []
    for net in NETWORKS.values():
        dep, market = None, "none"
        if net.chain_id is not None and net.chain_id in mine:
            dep, market = mine[net.chain_id], "yours"
        elif net.chain_id is None:  # devnet: any deployment file of a chain no preset names
            other = sorted(cid for cid in mine if cid not in by_chain)
            if other:
                dep, market = mine[other[0]], "yours"
        if dep is None and net.name in known and known[net.name].chain_id == net.chain_id:
            dep, market = known[net.name], "known"
        if net.embedded:
            market = "embedded"
        rows.append(NetworkMarket(
            name=net.name, label=net.label or net.name, chain_id=net.chain_id, testnet=net.testnet, layer=net.layer,
            l1_data_fee=net.op_stack, l1_fee=net.l1_fee, native_symbol=net.native_symbol, explorer=net.explorer,
            embedded=net.embedded, official_ntk=net.ntk_address, market=market, deployment=dep,
            problem=problems.get(net.chain_id) if net.chain_id is not None else None))
    return rows


def real_jobs_summary(rows: list[NetworkMarket]) -> str:
    """Plain sentences: where real jobs come from today, and the token rule."""
    public = [r for r in rows if r.has_market and not r.embedded and r.chain_id is not None]
    if public:
        names = ", ".join(r.label for r in public)
        where = (f"Real jobs come from buyers on a market you share with them; markets are known on: {names}. "
                 "Every other network has no market until someone deploys one.")
    else:
        where = ("No market is known on any public network yet, so no real jobs are posted anywhere today: real "
                 "jobs come only from buyers on a market you share with them (deploy one with `kminer market deploy` "
                 "or import a deployment file from whoever runs one). The local chain is for trying the app.")
    return f"{where} {NO_OFFICIAL_BRIDGED_NTK}"


def network_market(chain_dir: Path, name: str) -> NetworkMarket:
    """The row of one network (ValueError: unknown name)."""
    for r in market_networks(chain_dir):
        if r.name == name:
            return r
    raise ValueError(f"unknown network {name!r}; one of {', '.join(NETWORKS)}")


def _user_deployments(folder: Path) -> tuple[dict[int, Deployment], dict[int, str]]:
    found: dict[int, Deployment] = {}
    problems: dict[int, str] = {}
    try:
        names = sorted(p.name for p in folder.iterdir())[:100_000]
    except OSError:
        return found, problems
    for name in [n for n in names if _FILE.match(n)][:MAX_DEPLOYMENT_FILES]:
        cid = int(_FILE.match(name).group(1))
        path = folder / name
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > 64 << 10:
                raise WalletError(f"deployment file {path} is not a small plain file; it was not used")
            dep = load_deployment(folder, cid)
            addrs = (dep.ntk, dep.job_market, dep.model_market, dep.order_market or "")
            if not all(isinstance(a, str) and len(a) <= 42 for a in addrs) or not isinstance(dep.block, int):
                raise WalletError(f"deployment file {path} has malformed fields; it was not used")
            if dep.chain_id != cid:
                raise WalletError(f"deployment file {path} names chain {dep.chain_id}; it was not used")
            found[cid] = dep
        except (WalletError, OSError, ValueError) as e:
            problems[cid] = str(e).splitlines()[0][:300]
    return found, problems


def describe(net: Network) -> str:
    """'Base · chain id 8453 · main network · L2 (OP-stack: L1 data fee)'"""
    kind = "test network" if net.testnet else "main network"
    fee = {"op-stack": " (OP-stack: L1 data fee)", "in-gas": " (L1 cost inside gas)"}.get(net.l1_fee or "", "")
    cid = f"chain id {net.chain_id}" if net.chain_id is not None else "chain id from the node"
    return f"{net.label or net.name} · {cid} · {kind} · {net.layer}{fee}"
