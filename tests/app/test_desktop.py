"""app.market_session.MarketSession without Qt, on the real embedded chain (light KDF): the market
opens only with an unlocked wallet; on `local` the miner signs with the wallet's derived
mining account (funded with gas once), so the user's own orders can be mined here."""

from __future__ import annotations

import pytest

from app.context import AppContext
from app.market_session import BuyerFacade, MarketNotReady, MarketSession
from app.devices import DeviceService
from app.account import WalletSession, create_mining_key, local_mining_account
from app.account import WalletService
from wallet.keystore import Keystore

PW = "correct horse battery"


@pytest.fixture
def parts():
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create(PW)
    with WalletService(ctx, keystore=ks, passwords=[lambda a: PW]) as svc:
        svc.deployment()
    wallet = WalletSession(ctx, keystore=ks, retry_delays_s=(0.05,))
    devices = DeviceService(ctx, idle=lambda: None)
    market = MarketSession(ctx, wallet, devices)
    yield ctx, wallet, devices, market
    market.close()
    wallet.close()
    devices.close()


def test_locked_wallet_keeps_the_market_closed_with_a_reason(parts):
    ctx, wallet, devices, market = parts
    rep = market.step()
    assert not rep.ready and "locked" in rep.message
    assert rep.readiness.code == "no-signer" and "mining key" in rep.readiness.fix
    facade = BuyerFacade(market)
    assert facade.orders() == [] and facade.account is None
    with pytest.raises(MarketNotReady, match="locked"):
        facade.post_render


def test_unlocked_wallet_opens_buyer_and_miner_with_a_funded_mining_account(parts):
    ctx, wallet, devices, market = parts
    wallet.unlock(PW)
    rep = market.step()
    assert rep.ready, rep.message
    me = wallet.service.signer()
    miner = local_mining_account(me)
    assert market.miner_address() == miner.address != me.address
    assert local_mining_account(me).address == miner.address  # derived, the same every time
    chain = wallet.service.chain
    assert chain.balance_wei(miner.address) == 10 * 10**18
    assert BuyerFacade(market).account.address == me.address
    wallet.snapshot()  # learns the mining account's address, which names it in the history
    gas = [r for r in wallet.history() if r.asset == "ETH"]
    assert [(r.direction, r.amount_wei, r.counterparty, r.counterparty_label) for r in gas] == \
        [("out", 10 * 10**18, miner.address, "Your mining account")]
    # a second pass funds nothing again and keeps the same services
    buyer = market.buyer
    assert market.step().ready and market.buyer is buyer
    assert chain.balance_wei(miner.address) == 10 * 10**18
    assert not rep.mining and rep.paid_wei == []
    # locking the wallet closes the market (nothing signs while locked); unlocking reopens it
    wallet.lock()
    rep = market.step()
    assert not rep.ready and "locked" in rep.message and market.buyer is None
    wallet.unlock(PW)
    assert market.step().ready and market.miner_address() == miner.address


def test_a_home_mined_by_another_process_keeps_the_market_closed_with_its_reason(parts):
    from tests.app.test_home_lock import Holder

    ctx, wallet, devices, market = parts
    wallet.unlock(PW)
    h = Holder(ctx.paths.data_dir / "miner.lock")  # `kminer agent` of this home, on a JSON-RPC network
    try:
        rep = market.step()
        assert not rep.ready and rep.message.startswith("another Knowledge Miner process")
        assert market.buyer is None and market.miner is None
    finally:
        h.stop()
    assert market.step().ready  # the next pass opens it


def test_a_mining_key_mines_while_the_wallet_is_locked_and_the_unlock_opens_only_the_buyer(parts):
    ctx, wallet, devices, market = parts
    with WalletService(ctx, keystore=wallet.keystore, passwords=[lambda a: PW]) as svc:
        key = create_mining_key(svc, storage="file").key
    devices.set_mode("cpu", "mining")
    assert ctx.settings.device("cpu").price_floor_ntk_per_hour == 0.0
    rep = market.step()  # after a reboot: the main wallet is locked
    assert market.miner is not None and market.buyer is None and not rep.ready
    assert (market.market_signer.source, market.miner_address(), market.market_signer.payout) == \
        ("mining-key", key.address, ctx.settings.wallet.account)
    assert ctx.settings.device("cpu").price_floor_ntk_per_hour > 0  # the default floor, filled in
    assert rep.readiness.code in ("ready", "sandbox"), rep.readiness
    miner = market.miner
    wallet.unlock(PW)
    assert market.step().ready and market.miner is miner and market.buyer is not None
    wallet.lock()
    assert not market.step().ready and market.miner is miner and market.buyer is None
