"""The Wallet page's Mining key tab on the real embedded chain: create with the wallet locked
(a wrong password is said at the field, nothing made), then rotate; the buttons that cannot
act are disabled; the readiness banner's button opens this tab."""

from __future__ import annotations

import pytest

from app.account import WalletService, WalletSession
from app.context import AppContext
from ui.background import Background
from ui.wallet_view import WalletView
from wallet.keystore import Keystore
from wallet.mining_keys import MiningKeys

PW = "correct horse battery"


@pytest.fixture
def view(qtbot):
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create(PW)
    ctx.settings.mining_key.storage = "file"
    with WalletService(ctx, keystore=ks, passwords=[lambda a: PW]) as svc:
        svc.deployment()
    session = WalletSession(ctx, keystore=ks, retry_delays_s=(0.05,))
    runner = Background("chain")
    v = WalletView(session=session, chain_runner=runner)
    qtbot.addWidget(v)
    v.show()
    yield ctx, v
    v.shutdown()
    runner.submit(session.close).result(30)
    runner.shutdown(wait=True)


def test_create_with_the_wallet_locked_then_rotate(qtbot, view):
    ctx, v = view
    v.focus_mining_key()
    panel = v.mining_panel
    qtbot.waitUntil(lambda: panel.status is not None and panel.buttons["create"].isEnabled(), timeout=20000)
    assert not panel.buttons["rotate"].isEnabled() and not panel.buttons["revoke"].isEnabled()
    assert "No mining key" in panel.state.text()
    panel.ask("create")
    dlg = panel.dialog
    assert dlg.password.isVisibleTo(dlg)  # locked: the password is asked for this action only
    dlg.password.setText("wrong")
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: dlg.error.isVisible(), timeout=20000)
    assert dlg.error.text() == "Wrong password." and MiningKeys(ctx.paths.data_dir).active() is None
    changed = []
    panel.changed.connect(lambda: changed.append(1))
    dlg.password.setText(PW)
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: bool(changed) and panel.status is not None and panel.status.active is not None,
                    timeout=30000)
    key = MiningKeys(ctx.paths.data_dir).active()
    assert panel.address.text() == key.address and "anyone who can read your files" in panel.risk.text()
    assert "Gas: 10 ETH" in panel.state.text() and not panel.buttons["create"].isEnabled()
    assert not v.snapshot.unlocked  # the password opened the wallet for that action only
    v.refresh()  # the history says where the gas went
    qtbot.waitUntil(lambda: any(r.counterparty_label == "Your mining key" and r.amount_wei == 10 * 10**18
                                for r in v.rows), timeout=20000)
    panel.ask("rotate")
    panel.dialog.password.setText(PW)
    panel.dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: len(changed) == 2, timeout=30000)
    qtbot.waitUntil(lambda: panel.status.active is not None and panel.status.active.address != key.address,
                    timeout=20000)
    assert "is retired" in panel.result.text() and "back to" in panel.result.text()
