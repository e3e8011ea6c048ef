"""WalletService on the local chain: first start deploys and funds, restart finds the same
contracts, a wiped chain is re-bootstrapped, and the chain stays locked while open."""

from __future__ import annotations

import pytest

from app.context import AppContext
from app.account import WalletService
from wallet.deploy import FAUCET_NTK_WEI
from wallet.errors import ChainLocked, WalletError
from wallet.keystore import Keystore


def _svc(ctx, ks, **kw):
    return WalletService(ctx, keystore=ks, passwords=[lambda a: "pw"], **kw)


def test_local_first_start_restart_and_wipe(tmp_path):
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    with pytest.raises(WalletError, match="wallet create"):
        _ = _svc(ctx, ks).address
    addr = ks.create("pw")
    with _svc(ctx, ks) as svc:
        dep = svc.deployment()  # first start: deploys and funds from the faucet
        b = svc.balances()
        assert (b.address, b.chain_id, b.ntk_wei) == (addr, 27501, FAUCET_NTK_WEI) and b.eth_wei > 0
        with pytest.raises(ChainLocked):
            _svc(ctx, ks).chain  # a second instance while this one holds the chain
    with _svc(ctx, ks) as svc:
        assert svc.deployment() == dep  # restart: same contracts, nothing redeployed
        assert svc.balances().ntk_wei == FAUCET_NTK_WEI
    for p in ctx.paths.chain_dir.glob("chain.sqlite*"):
        p.unlink()
    with _svc(ctx, ks) as svc:
        assert svc.balances().ntk_wei == FAUCET_NTK_WEI  # a new chain, bootstrapped again


def test_devnet_without_deployment_says_how_to_deploy(anvil, tmp_path):
    from wallet.errors import NotDeployed

    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ks.import_private_key(anvil.keys[0], "pw")
    with _svc(ctx, ks, network="devnet", rpc_url=anvil.url) as svc:
        assert svc.balances().ntk_wei is None
        with pytest.raises(NotDeployed, match="kminer market deploy"):
            svc.market()
        dep = svc.deploy()
        assert svc.market().deployment == dep
