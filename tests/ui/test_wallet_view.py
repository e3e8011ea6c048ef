"""The Wallet view on the real embedded chain (light KDF): address, QR, exact balances, send
with fee and confirmation, wrong passwords, bad addresses, insufficient funds, history
filters and CSV export, and a devnet node that is down, then comes back (a real anvil)."""

from __future__ import annotations

import csv
import io

import pytest

from app.context import AppContext
from app.amounts import format_amount
from app.account import WalletSession
from app.account import WalletService
from tests.ui.file_dialogs import answer_file_dialog
from tests.ui.layout_checks import clipped_labels
from tests.wallet.conftest import free_port, start_anvil, stop_anvil
from ui.background import Background
from ui.qt import QGuiApplication
from ui.wallet_dialogs import ConfirmSendDialog, PasswordDialog
from ui.wallet_view import WalletView
from wallet.deploy import FAUCET_NTK_WEI
from wallet.keystore import Keystore

NTK = 10**18
PW = "correct horse battery"
OTHER = "0x52908400098527886E0F7030069857D2E4169EE7"
TYPO = OTHER.replace("886E0F", "886e0F")


@pytest.fixture
def wallet(qtbot):
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create(PW)
    with WalletService(ctx, keystore=ks, passwords=[lambda a: PW]) as svc:
        svc.deployment()  # deployed and funded, as after the first run
    runner = Background("chain")
    session = WalletSession(ctx, keystore=ks, retry_delays_s=(0.05,))
    view = WalletView(session=session, chain_runner=runner)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.snapshot is not None and view.history_table.rowCount() > 0, timeout=15000)
    yield view, session, runner
    view.shutdown()
    runner.submit(session.close).result(10)
    runner.shutdown(wait=True)


def on_chain(runner, fn):
    """Run fn on the chain runner and wait for it (test set-up steps)."""
    return runner.submit(fn).result(30)


def refreshed(qtbot, view):
    with qtbot.waitSignal(view.snapshotChanged, timeout=15000):
        view.refresh()


def test_shows_address_qr_exact_balances_and_history(qtbot, wallet):
    view = wallet[0]
    snap = view.snapshot
    assert view.address_label.text() == snap.address
    assert not view.qr.pixmap().isNull() and view.qr.pixmap().width() >= 100
    assert snap.ntk_wei == FAUCET_NTK_WEI
    assert view.ntk_label.toolTip() == "1,000,000 NTK (exact)"
    assert view.eth_label.toolTip() == f"{format_amount(snap.eth_wei)} ETH (exact)"
    assert "chain id 27501" in view.summary.text() and "locked" in view.summary.text()
    assert view.history_table.item(0, 3).text() == "Minted (faucet)"
    assert view.history_table.item(0, 1).text() == "Received"
    assert view.history_table.item(0, 2).text() == "+1,000,000 NTK"
    view.copy_address()
    assert QGuiApplication.clipboard().text() == snap.address


def test_field_errors_for_bad_address_checksum_and_insufficient_funds(qtbot, wallet):
    view = wallet[0]
    view.tabs.setCurrentIndex(1)
    view.to_edit.setText("0x1234")
    assert view.to_error.isVisible() and "40 hex digits" in view.to_error.text()
    view.to_edit.setText(TYPO)
    assert "checksum" in view.to_error.text()
    view.to_edit.setText(OTHER)
    assert not view.to_error.isVisible()
    view.amount_edit.setText("1.0000000000000000001")
    assert "decimal places" in view.amount_error.text()
    view.amount_edit.setText("2000000")
    qtbot.waitUntil(lambda: "Insufficient funds" in view.amount_error.text(), timeout=10000)
    assert "1,000,000 NTK" in view.amount_error.text() and not view.send_button.isEnabled()


def test_send_asks_password_refuses_wrong_one_and_sends_exact_amount(qtbot, wallet):
    view = wallet[0]
    view.tabs.setCurrentIndex(1)
    view.to_edit.setText(OTHER.lower())
    view.amount_edit.setText("12.000000000000000001")
    qtbot.waitUntil(view.send_button.isEnabled, timeout=10000)
    assert view.fee_label.text().startswith("≈ 0.0000") and "gwei" in view.fee_label.text()
    view.send_clicked()
    qtbot.waitUntil(lambda: isinstance(view.dialog, ConfirmSendDialog) and view.dialog.isVisible(), timeout=10000)
    dlg = view.dialog
    assert dlg.password.isVisible()  # locked: the password is asked in the confirmation
    assert not clipped_labels(dlg)
    assert dlg.quote.amount_wei == 12 * NTK + 1 and dlg.quote.to == OTHER
    dlg.password.setText("wrong")
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: dlg.error.isVisible(), timeout=10000)
    assert dlg.error.text() == "Wrong password." and dlg.isVisible()
    refreshed(qtbot, view)
    assert view.snapshot.ntk_wei == FAUCET_NTK_WEI  # nothing was sent
    dlg.password.setText(PW)
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=15000)
    assert view.send_status.text().startswith("Sent in block")
    qtbot.waitUntil(lambda: view.snapshot.ntk_wei == FAUCET_NTK_WEI - 12 * NTK - 1, timeout=15000)
    qtbot.waitUntil(lambda: view.history_table.rowCount() == 2, timeout=15000)
    assert view.history_table.item(0, 2).text() == "−12.000000000000000001 NTK"
    assert view.history_table.item(0, 1).text() == "Sent"


def test_unlock_wrong_password_changes_nothing_then_unlock_and_lock(qtbot, wallet):
    view, _, _ = wallet
    view.toggle_lock()
    qtbot.waitUntil(lambda: isinstance(view.dialog, PasswordDialog) and view.dialog.isVisible(), timeout=10000)
    dlg = view.dialog
    assert dlg.remember.isEnabled()  # the test keyring (a file backend) is available
    dlg.password.setText("nope")
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(dlg.error.isVisible, timeout=10000)
    assert dlg.error.text() == "Wrong password." and dlg.isVisible()
    refreshed(qtbot, view)
    assert not view.snapshot.unlocked and view.lock_button.text() == "Unlock…"
    dlg.password.setText(PW)
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: view.snapshot.unlocked, timeout=10000)
    assert not dlg.isVisible() and view.lock_button.text() == "Lock"
    view.toggle_lock()
    qtbot.waitUntil(lambda: not view.snapshot.unlocked, timeout=10000)


def test_history_filters_and_csv_export(qtbot, wallet, tmp_path):
    view, session, runner = wallet

    def send_two():
        session.unlock(PW)
        session.send(session.quote(OTHER, "3"))
        session.send(session.quote(OTHER, "0.25"))

    on_chain(runner, send_two)
    qtbot.waitUntil(lambda: (view.refresh(), view.history_table.rowCount() == 3)[1], timeout=15000)
    view.direction_combo.setCurrentIndex(view.direction_combo.findData("out"))
    assert view.history_table.rowCount() == 2
    view.search_edit.setText("0.25")
    assert view.history_table.rowCount() == 1 and view.history_status.text() == "1 of 3 entries"
    view.search_edit.clear()
    view.kind_combo.setCurrentIndex(view.kind_combo.findData("job"))
    assert view.history_table.rowCount() == 0
    view.kind_combo.setCurrentIndex(0)
    path = tmp_path / "out" / "history.csv"
    path.parent.mkdir()
    seen = answer_file_dialog(path)
    view.export_clicked()
    assert seen["file"].endswith("kminer-history.csv")   # a name is suggested
    qtbot.waitUntil(lambda: view.history_status.text().startswith("Exported"), timeout=10000)
    seen = answer_file_dialog(None)
    view.export_clicked()
    assert seen["folder"] == path.parent   # the next export starts where the last one went
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert [(t["direction"], t["amount"], t["amount_wei"]) for t in table] == [
        ("out", "0.25", str(NTK // 4)), ("out", "3", str(3 * NTK))]  # the filtered rows, exact


def test_rpc_down_shows_a_calm_banner_and_retry_recovers(qtbot, wallet):
    view, session, _ = wallet
    port = free_port()
    session.ctx.settings.wallet.rpc_urls["devnet"] = f"http://127.0.0.1:{port}"  # the URL devnet had
    view.switch_network("devnet")
    qtbot.waitUntil(view.banner.isVisible, timeout=15000)
    assert "Cannot reach the devnet node" in view.banner_text.text() and f":{port}" in view.banner_text.text()
    assert view.ntk_label.text() == "–" and view.eth_label.text() == "–"  # no stale local balances
    assert view.network_combo.currentData() == "devnet"
    anvil = start_anvil(port)
    try:
        view.retry_button.click()
        qtbot.waitUntil(lambda: not view.banner.isVisible() and view.snapshot.network == "devnet", timeout=15000)
        assert "chain id 31337" in view.summary.text()
        assert view.snapshot.ntk_wei is None and "No NTK contract" in view.ntk_note.text()
    finally:
        stop_anvil(anvil)
    view.switch_network("local")
    qtbot.waitUntil(lambda: view.snapshot.network == "local" and view.snapshot.ntk_wei == FAUCET_NTK_WEI, timeout=15000)


def test_remembered_password_unlocks_from_the_keyring_without_asking(qtbot, wallet):
    view, session, _ = wallet
    view.toggle_lock()
    qtbot.waitUntil(lambda: isinstance(view.dialog, PasswordDialog) and view.dialog.isVisible(), timeout=10000)
    dlg = view.dialog
    dlg.password.setText(PW)
    dlg.remember.setChecked(True)
    dlg.buttons.accepted.emit()
    qtbot.waitUntil(lambda: view.snapshot.unlocked, timeout=10000)
    assert session.ctx.settings.wallet.remember_password
    view.toggle_lock()
    qtbot.waitUntil(lambda: not view.snapshot.unlocked, timeout=10000)
    view.toggle_lock()
    qtbot.waitUntil(lambda: view.snapshot.unlocked, timeout=10000)
    assert view.dialog is dlg  # no new password dialog: the keyring held it
