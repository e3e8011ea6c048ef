"""The Stake dialog (pytest-qt, offscreen) over app.stake on the real OrderMarket of the
in-memory chain: it shows the stake, the wallet's NTK and what a typical order needs; a bad
amount is one red line and nothing is sent; a good one is priced (approval + stake at the
chain's fees), confirmed, staked on chain off the GUI thread, and the dialog shows the new
stake; unstaking says the unbonding delay and starts it on chain.

With KMINER_SCREENSHOTS=DIR (under `xvfb-run -a`, QT_QPA_PLATFORM=xcb) it saves
stake-dialog.png and stake-confirm.png there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.orders.test_stake import actions
from tests.wallet.conftest import _order_module, order_env  # noqa: F401  (fixtures)
from ui.background import Background
from ui.qt import QApplication

NTK = 10**18


@pytest.fixture
def runner():
    r = Background("chain")
    yield r
    r.shutdown(wait=True)


def shot(widget, name: str) -> None:
    shots = os.environ.get("KMINER_SCREENSHOTS")
    if shots:
        QApplication.processEvents()
        widget.grab().save(str(Path(shots) / name))


def open_dialog(qtbot, acts, runner):
    from ui.stake_dialog import StakeDialog

    dlg = StakeDialog(actions=acts, runner=runner)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitUntil(lambda: dlg.status is not None, timeout=10_000)
    return dlg


def stake_on_chain(env) -> tuple[int, int]:
    s = env.om.stake(env.miner.address, env.payout.address)
    return s.active_wei, s.withdrawing_wei


def test_staking_from_the_dialog_changes_the_stake_on_chain(order_env, qtbot, runner):  # noqa: F811
    env = order_env
    dlg = open_dialog(qtbot, actions(env), runner)
    bal = dlg.status.balance_wei
    assert "0 NTK: buyers grant this rig no claims" in dlg.staked_label.text()
    assert dlg.balance_label.text().startswith(f"{bal // NTK:,} NTK")
    assert dlg.need_label.text() == "8 NTK — <b>stake 8 NTK more</b>"
    assert "what a typical order's claims take at once: 4 shards of 10 NTK, 2 NTK staked" in dlg.delay_note.text()
    assert dlg.amount_edit.text() == "8"  # what is missing, suggested
    assert "14 days" in dlg.delay_note.text() and not dlg.unstake_button.isEnabled()

    # bad amounts: one line under the field, no cost asked, nothing on chain
    block = env.chain.w3.eth.block_number
    for text, said in (("", "Enter an amount."), ("ten", "Not a number: 'ten'."), ("0", "more than zero"),
                       (str(bal // NTK + 1), f"More than your {bal // NTK:,} NTK.")):
        dlg.amount_edit.setText(text)
        dlg.stake_button.click()
        assert dlg.error_label.isVisible() and said in dlg.error_label.text(), dlg.error_label.text()
        assert "\n" not in dlg.error_label.text() and dlg.confirm_dialog is None and not dlg.busy
    assert env.chain.w3.eth.block_number == block and stake_on_chain(env) == (0, 0)

    dlg.amount_edit.setText("12.5")
    shot(dlg, "stake-dialog.png")
    dlg.stake_button.click()
    assert not dlg.error_label.isVisible()
    qtbot.waitUntil(lambda: dlg.confirm_dialog is not None, timeout=10_000)
    conf = dlg.confirm_dialog
    labels = [x.label for x in conf.breakdown.lines]
    assert labels == ["stake (from your wallet)", "network fee (approval + stake)"]
    assert conf.breakdown.total("NTK") == 12_500_000_000_000_000_000 and conf.breakdown.total("ETH") > 0
    assert "gas ×" in conf.line_labels[1].text() and "$" in conf.line_labels[1].text()
    assert conf.ok_button.text() == "Stake 12.5 NTK"
    shot(conf, "stake-confirm.png")
    with qtbot.waitSignal(dlg.changed, timeout=30_000) as changed:
        conf.ok_button.click()
    assert stake_on_chain(env) == (12_500_000_000_000_000_000, 0)
    assert changed.args[0].active_wei == 12_500_000_000_000_000_000
    assert dlg.message.text() == "Staked 12.5 NTK: 12.5 NTK now." and "covers 6 claim(s)" in dlg.staked_label.text()
    assert dlg.unstake_button.isEnabled() and dlg.amount_edit.text() == ""

    # unstake: more than staked is one line; a good amount unbonds for the contract's delay
    dlg.amount_edit.setText("13")
    dlg.unstake_button.click()
    assert dlg.error_label.text() == "More than the 12.5 NTK staked." and dlg.confirm_dialog is None
    dlg.amount_edit.setText("2.5")
    dlg.unstake_button.click()
    qtbot.waitUntil(lambda: dlg.confirm_dialog is not None, timeout=10_000)
    assert any("withdrawn in 14 days" in n for n in dlg.confirm_dialog.breakdown.notes)
    with qtbot.waitSignal(dlg.changed, timeout=30_000):
        dlg.confirm_dialog.ok_button.click()
    assert stake_on_chain(env) == (10 * NTK, 2_500_000_000_000_000_000)
    assert dlg.unbonding_label.text() == "2.5 NTK, can be withdrawn in 14 days"
    assert dlg.withdraw_button.isVisible() and not dlg.withdraw_button.isEnabled()
    assert "covered" in dlg.need_label.text()
    shot(dlg, "stake-dialog-unbonding.png")


def test_cancel_sends_nothing_and_a_failure_is_one_line(order_env, qtbot, runner):  # noqa: F811
    env = order_env
    dlg = open_dialog(qtbot, actions(env), runner)
    dlg.amount_edit.setText("3")
    dlg.stake_button.click()
    qtbot.waitUntil(lambda: dlg.confirm_dialog is not None, timeout=10_000)
    dlg.confirm_dialog.reject()
    assert stake_on_chain(env) == (0, 0) and dlg.stake_button.isEnabled() and not dlg.busy

    # the wallet is locked: one line when asked, before any cost, and nothing is sent
    from app.stake import StakeActions

    good = actions(env)

    def locked():
        raise ValueError("the wallet is locked: unlock it first (Wallet → Unlock…)")

    shut = StakeActions(market=good._market, signer=good._signer, payer=locked,
                        payer_address=lambda: env.payout.address, network=good._network)
    dlg = open_dialog(qtbot, shut, runner)
    dlg.amount_edit.setText("3")
    dlg.stake_button.click()
    qtbot.waitUntil(lambda: dlg.message.isVisible(), timeout=10_000)
    assert dlg.message.text() == "Not done: The wallet is locked: unlock it first (Wallet → Unlock…)"
    assert dlg.confirm_dialog is None and stake_on_chain(env) == (0, 0)

    # another account pays than the rig's payout: the dialog says so and offers nothing
    other = open_dialog(qtbot, actions(env, payer=env.stranger), runner)
    assert not other.stake_button.isEnabled() and other.message.text().startswith("The rig is paid to 0x")
    assert "\n" not in other.message.text()
