"""Buyer fixtures: a real in-memory EVM with our contracts, and app contexts (own folders)
for a buyer and a miner in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "resources" / "scenes" / "table_top.json"
SHELF = ROOT / "resources" / "scenes" / "retail_shelf.json"
NTK = 10**18


def context(home: Path):
    from app.context import AppContext
    from app.paths import resolve_paths

    return AppContext.open(resolve_paths({"KMINER_HOME": str(home)}))


@pytest.fixture
def chain_env(tmp_path):
    """(tester, market, accounts): NTK and the markets deployed; [1] buyer with 100 NTK, [2] miner."""
    from tests.wallet.conftest import make_tester_chain
    from wallet.deploy import deploy_all
    from wallet.market import MarketClient

    tester, chain, accounts = make_tester_chain(tmp_path)
    m = MarketClient(chain, deploy_all(chain, accounts[0]))
    m.token.mint(accounts[0], accounts[1].address, 100 * NTK)
    return tester, m, accounts


@pytest.fixture
def buyer(chain_env, tmp_path):
    from app.buyer import BuyerService

    _, m, accounts = chain_env
    svc = BuyerService(context(tmp_path / "buyer"), m, accounts[1])
    yield svc
    svc.close()


def scene_dict(path: Path = TABLE) -> dict:
    return json.loads(path.read_text())
