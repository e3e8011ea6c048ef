"""Deploying our contracts and remembering where they are, per chain id.

A `Deployment` (addresses of NTK, JobMarket, ModelMarket on one chain) is saved as JSON in
`<folder>/deployment-<chain_id>.json` (atomic write). On the embedded chain the app deploys on
first start with the user's account and funds it from the faucet.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from common.fsutil import atomic_write_json
from wallet import artifacts
from wallet.chain import Chain
from wallet.errors import NotDeployed, WalletError

FAUCET_NTK_WEI = 1_000_000 * 10**18
"""NTK minted to the user on a new local chain."""


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    ntk: str
    job_market: str
    model_market: str
    block: int
    deployer: str


def deployment_path(folder: Path, chain_id: int) -> Path:
    return Path(folder) / f"deployment-{chain_id}.json"


def load_deployment(folder: Path, chain_id: int) -> Deployment:
    path = deployment_path(folder, chain_id)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Deployment(**raw)
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
    """Deploy NTK, JobMarket and ModelMarket from `account` (the NTK faucet owner)."""
    if chain.chain_id == 1:
        raise WalletError("refusing to deploy test contracts on Ethereum mainnet")
    addrs = {}
    first_block = None
    for name, args in (("NTK", (initial_supply_wei,)), ("JobMarket", None), ("ModelMarket", None)):
        art = artifacts.load(name)
        factory = chain.w3.eth.contract(abi=art.abi_list(), bytecode=art.bytecode)
        ctor = factory.constructor(*(args if args is not None else (addrs["NTK"],)))
        res = chain.transact(account, ctor, gas=4_000_000 if chain.embedded else None, what=f"deploying {name}")
        addrs[name] = res.receipt["contractAddress"]
        first_block = first_block if first_block is not None else res.block_number
    return Deployment(chain_id=chain.chain_id, ntk=addrs["NTK"], job_market=addrs["JobMarket"],
                      model_market=addrs["ModelMarket"], block=int(first_block), deployer=account.address)
