"""The rig's readiness: "ready for jobs" only when every check passes, else the first failing
one with its fix; and the facts gathered from a real local chain with a locked wallet."""

from __future__ import annotations

import pytest

from app.readiness import RigFacts, rig_readiness

OK = dict(signer_problem=None, signer_source="mining-key", network="local", mining_devices=("cpu",),
          signer_eth_wei=10**19, low_gas_wei=10**18)


def test_ready_only_when_everything_holds():
    r = rig_readiness(RigFacts(**OK))
    assert r.ready and r.code == "ready" and r.reason == "Ready for jobs: 1 device mining" and r.fix == ""


@pytest.mark.parametrize("change, code, words", [
    (dict(signer_problem="the wallet is locked and there is no mining key", signer_fix="create a mining key"),
     "no-signer", "wallet is locked"),
    (dict(node_problem="cannot reach http://127.0.0.1:9"), "offline", "does not answer"),
    (dict(market_deployed=False), "no-market", "no job market"),
    (dict(sandbox_level="basic"), "sandbox", "strict sandbox"),
    (dict(sandbox_available=False), "sandbox", "only basic"),
    (dict(mining_devices=()), "no-device", "no device"),
    (dict(mining_devices=(), auto_waiting=("cpu",)), "no-device", "once you are away"),
    (dict(devices_without_floor=("cpu",)), "no-floor", "no price floor on cpu"),
    (dict(signer_eth_wei=10), "no-gas", "too little ETH"),
])
def test_each_failing_check_is_the_one_reason_with_a_fix(change, code, words):
    r = rig_readiness(RigFacts(**{**OK, **change}))
    assert not r.ready and r.code == code and words in r.reason
    assert r.fix and "\n" not in r.reason + r.fix and "--" not in r.fix  # GUI words, no CLI flags


def test_first_failing_check_wins_and_basic_allowed_by_the_user_is_ready():
    r = rig_readiness(RigFacts(**{**OK, "signer_problem": "locked", "node_problem": "down", "mining_devices": ()}))
    assert r.code == "no-signer"
    assert rig_readiness(RigFacts(**{**OK, "sandbox_level": "basic", "allow_market_jobs_basic": True})).ready


def test_facts_from_a_locked_wallet_on_the_local_chain(devices_cpu_mining):
    """No mining key and a locked wallet: not ready, with the fix; a mining key: ready."""
    from app.account import WalletService, create_mining_key
    from app.rig import check_rig
    from wallet.keystore import Keystore

    ctx, devices = devices_cpu_mining
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ks.create("pw-12345678")
    with WalletService(ctx, keystore=ks, passwords=[lambda a: "pw-12345678"]) as svc:
        svc.deployment()
    ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.5
    with WalletService(ctx, keystore=ks) as locked:
        r = check_rig(ctx, locked, devices.states())
        assert (r.ready, r.code) == (False, "no-signer") and "mining key" in r.fix
    ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.0
    with WalletService(ctx, keystore=ks, passwords=[lambda a: "pw-12345678"]) as svc:
        create_mining_key(svc, storage="file")
    with WalletService(ctx, keystore=ks) as locked:
        assert check_rig(ctx, locked, devices.states()).code == "no-floor"
        ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.5
        r = check_rig(ctx, locked, devices.states())
        from jobs.sandbox import strict_problem

        assert (r.ready, r.code) == ((True, "ready") if strict_problem() is None else (False, "sandbox")), r


@pytest.fixture
def devices_cpu_mining():
    from app.context import AppContext
    from app.devices import DeviceService

    ctx = AppContext.open()
    devs = DeviceService(ctx, idle=lambda: None)
    devs.set_mode("cpu", "mining")
    yield ctx, devs
    devs.close()
