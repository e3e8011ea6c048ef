"""Deploying our contracts and remembering where they are, per chain id.

A `Deployment` (addresses of the token, JobMarket, ModelMarket and OrderMarket on one chain)
is saved as JSON in `<folder>/deployment-<chain_id>.json` (atomic write). On the embedded
chain the app deploys on first start with the user's account and funds it from the faucet.
`deploy_market` deploys the markets to any network for whoever runs a market there: with our
own test NTK on test networks, against a token address the user confirmed on main networks.
Markets known to the project ship in `resources/data/deployments.json` (`known_deployments`);
a file the user deployed or imported wins over it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from common.fsutil import atomic_write_json
from wallet import artifacts
from wallet.chain import Chain
from wallet.errors import NotDeployed, WalletError
from wallet.networks import NETWORKS_FILE, Network

FAUCET_NTK_WEI = 1_000_000 * 10**18
"""NTK minted to the user on a new local chain."""


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    ntk: str
    """The token the markets pay in: our NTK on local and test chains, else the confirmed one."""
    job_market: str
    model_market: str
    block: int
    deployer: str
    order_market: str | None = None
    """The OrderMarket (orders of N shards settled by signatures); None in files from before it."""
    network: str | None = None


def deployment_path(folder: Path, chain_id: int) -> Path:
    return Path(folder) / f"deployment-{chain_id}.json"


def load_deployment(folder: Path, chain_id: int) -> Deployment:
    path = deployment_path(folder, chain_id)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return _deployment(raw)
    except FileNotFoundError:
        raise NotDeployed(f"no market contracts known for chain {chain_id}; deploy them first "
                          "(`kminer market deploy`) or pick another network") from None
    except (ValueError, TypeError) as e:
        raise WalletError(f"deployment file {path} is unreadable ({e}); it was left as it is") from None


def save_deployment(folder: Path, d: Deployment) -> Path:
    path = deployment_path(folder, d.chain_id)
    atomic_write_json(path, asdict(d))
    return path


def deploy_all(chain: Chain, account, *, initial_supply_wei: int = 0) -> Deployment:
    """Deploy NTK, JobMarket, ModelMarket and OrderMarket from `account` (the NTK faucet owner)."""
    if chain.chain_id == 1:
        raise WalletError("refusing to deploy test contracts on Ethereum mainnet")
    ntk, block = _deploy(chain, account, "NTK", initial_supply_wei)
    return _deploy_markets(chain, account, ntk, block, network=None)


def deploy_market(chain: Chain, account, network: Network, *, token: str | None = None,
                  initial_supply_wei: int = 0) -> Deployment:
    """Deploy the markets on `network` (the chain must serve its chain id). Test networks get
    our NTK (with its faucet) unless `token` is given; main networks need `token`, the
    address of the ERC-20 the user confirmed (no NTK on an L2 is official), and never get ours."""
    from wallet.token import TokenClient

    token = check_token(chain, network, token)
    if token is None:
        token, block = _deploy(chain, account, "NTK", initial_supply_wei)
    else:
        block = None
    return _deploy_markets(chain, account, token, block, network=network.name)


def check_token(chain: Chain, network: Network, token: str | None) -> str | None:
    """The checksummed token the markets on `network` will pay in (None: deploy our test NTK);
    `WalletError` (one line) when the chain is not `network`'s, a main network has no token,
    or `token` is not an ERC-20 contract there."""
    from wallet.token import TokenClient

    if network.chain_id is not None and chain.chain_id != network.chain_id:
        raise WalletError(f"the node serves chain {chain.chain_id}, not {network.name} ({network.chain_id})")
    if token is None:
        if not network.test_tokens:
            raise WalletError(f"{network.name} is a main network: give the token address the market pays in "
                              "(no NTK on it is official; confirm the address yourself)")
        return None
    if not isinstance(token, str) or not chain.w3.is_address(token):
        raise WalletError(f"token {str(token)[:60]!r} is not an Ethereum address")
    token = chain.w3.to_checksum_address(token)
    if not chain.read(lambda: chain.w3.eth.get_code(token)):
        raise WalletError(f"no contract at {token} on {network.name}: check the token address")
    try:
        TokenClient(chain, token).info()
    except Exception:
        raise WalletError(f"{token} on {network.name} does not answer as an ERC-20 token") from None
    return token


def estimate_deploy(chain: Chain, network: Network, sender: str, *, token: str | None = None,
                    initial_supply_wei: int = 0) -> list:
    """What `deploy_market` would cost, one `wallet.fees.Cost` per contract (our NTK first when
    `token` is None): the node's gas estimate, today's fees, the L1 data fee on OP-stack chains."""
    from wallet.fees import FeeEstimator

    est = FeeEstimator(chain, network)
    placeholder = token or "0x" + "00" * 19 + "01"  # the markets' constructors only store the token
    out = []
    steps = ([("NTK", initial_supply_wei)] if token is None else []) + [
        (name, placeholder) for name in ("JobMarket", "ModelMarket", "OrderMarket")]
    for name, arg in steps:
        art = artifacts.load(name)
        ctor = chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode).constructor(arg)
        out.append(est.quote(sender, ctor, action=f"deploy {name}"))
    return out


def _deploy_markets(chain: Chain, account, token: str, block: int | None, *, network: str | None) -> Deployment:
    addrs = {}
    for name in ("JobMarket", "ModelMarket", "OrderMarket"):
        addrs[name], b = _deploy(chain, account, name, token)
        block = b if block is None else block
    return Deployment(chain_id=chain.chain_id, ntk=token, job_market=addrs["JobMarket"],
                      model_market=addrs["ModelMarket"], block=int(block), deployer=account.address,
                      order_market=addrs["OrderMarket"], network=network)


def _deploy(chain: Chain, account, name: str, arg) -> tuple[str, int]:
    art = artifacts.load(name)
    factory = chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode)
    res = chain.transact(account, factory.constructor(arg), gas=6_000_000 if chain.embedded else None,
                         what=f"deploying {name}")
    return res.receipt["contractAddress"], res.block_number


def _deployment(raw: object) -> Deployment:
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    known = {f.name for f in fields(Deployment)}
    extra = set(raw) - known
    if extra:
        raise ValueError(f"unknown fields {sorted(extra)}")
    return Deployment(**raw)


KNOWN_DEPLOYMENTS_FILE = NETWORKS_FILE.parent / "deployments.json"


def known_deployments(path: Path = KNOWN_DEPLOYMENTS_FILE) -> dict[str, Deployment]:
    """Markets the project knows of, by network name (`resources/data/deployments.json`)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != "market_deployments":
            raise ValueError("not a market_deployments document")
        return {name: _deployment(d) for name, d in doc["deployments"].items()}
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise WalletError(f"deployments file {path} is unreadable ({e})") from None


def find_deployment(folder: Path, network: Network, chain_id: int) -> Deployment:
    """The market on this chain: the user's own file first, else one the project knows of;
    `NotDeployed` (one line, what to do) when neither has it."""
    try:
        return load_deployment(folder, chain_id)
    except NotDeployed:
        pass
    dep = known_deployments().get(network.name)
    if dep is not None and dep.chain_id == chain_id:
        return dep
    raise NotDeployed(f"no market is known on {network.label or network.name} (chain {chain_id}): deploy one "
                      "(`kminer market deploy --network NAME`), import a deployment file, or pick another network")
