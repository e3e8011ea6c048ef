"""The main window over the real services on the embedded `local` chain (which has an order
market): once the wallet is unlocked the app stakes test NTK for its own mining account; where
a rig has no stake, the status bar and the Jobs page say so in one line with the fix; the Jobs page
has a Transfers tab over the home's transport nodes; the Orders form offers peer to peer (the
default wherever the network has one, this local chain included) and posts through the session's P2P buyer (its desk and transport peer opened on the
chain runner), after the cost confirmation; the order is then listed beside job-market ones.

With KMINER_SCREENSHOTS=DIR (under `xvfb-run -a`, QT_QPA_PLATFORM=xcb) it saves the Jobs page
with the stake line and its Stake… button (jobs-stake-notice.png), the Wallet page with the
stake (wallet-stake.png) and the Transfers tab (jobs-transfers.png)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.account import WalletService, WalletSession
from app.context import AppContext
from app.devices import DeviceService
from app.market_session import MarketSession
from app.runtime import JobsService
from tests.buyer.conftest import TABLE
from wallet.keystore import Keystore

PW = "correct horse battery"
NTK = 10**18


@pytest.fixture
def window(qtbot):
    from ui.main_window import MainWindow

    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    ctx.settings.wallet.account = ks.create(PW)
    with WalletService(ctx, keystore=ks, passwords=[lambda a: PW]) as svc:
        svc.deployment()
    wallet = WalletSession(ctx, keystore=ks, retry_delays_s=(0.05,))
    devices = DeviceService(ctx, idle=lambda: None)
    w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), wallet=wallet,
                   market=MarketSession(ctx, wallet, devices), tray=False)
    qtbot.addWidget(w)
    w.resize(1240, 800)
    w.show()
    w.chain_runner.submit(lambda: wallet.unlock(PW)).result(60)
    yield w
    w.quit()


def test_stake_problem_transfers_tab_and_a_p2p_post_through_the_session(window, qtbot):
    w = window
    # on the local chain the app stakes test NTK for its own mining account (minted: the wallet's
    # balance does not move), so the user's P2P orders are claimed by this rig
    qtbot.waitUntil(lambda: w._market.order_miner is not None, timeout=60_000)
    runner = w._market.order_miner
    qtbot.waitUntil(lambda: w.chain_runner.submit(runner.stake_problem).result(30) is None, timeout=60_000)
    assert w.stake_problem is None and not w.stake_label.isVisible()
    # where a rig has no stake (another network), one line says so with the fix
    w.show_stake_problem(f"no stake on the order market for {runner.signer.address} paid to "
                         f"{runner.signer.payout}: buyers grant claims only against a stake (fix: kminer wallet stake 50)")
    line = w.stake_label.text()
    assert line.startswith("No stake on the order market for 0x") and line.endswith("grant claims only against a stake")
    assert "\n" not in line and len(line) < 150 and w.stake_label.isVisible()
    assert w.stake_label.toolTip() == w.stake_problem  # the full addresses
    assert w.jobs_view.notice.text() == line
    # the fix is a button beside the line (status bar and Jobs page): the Stake dialog, which stakes on chain
    assert w.stake_button.isVisible() and w.jobs_view.notice_button.text() == "Stake…"
    w.show_page("Jobs")
    assert w.jobs_view.notice_button.isVisible()
    shots = os.environ.get("KMINER_SCREENSHOTS")
    if shots:  # at once: the window's own stake check reads the real (staked) state again soon
        w.grab().save(str(Path(shots) / "jobs-stake-notice.png"))
    w.jobs_view.notice_button.click()
    dlg = w.stake_dialog
    qtbot.waitUntil(lambda: dlg.status is not None, timeout=30_000)
    before = dlg.status.active_wei
    assert before == 50 * NTK and dlg.status.miner == runner.signer.address  # what the app staked for its miner
    dlg.amount_edit.setText("5")
    dlg.stake_button.click()
    qtbot.waitUntil(lambda: dlg.confirm_dialog is not None, timeout=30_000)
    with qtbot.waitSignal(dlg.changed, timeout=60_000):
        dlg.confirm_dialog.ok_button.click()
    on_chain = w.chain_runner.submit(lambda: runner.om.stake(runner.signer.address, runner.signer.payout)).result(30)
    assert on_chain.active_wei == 55 * NTK
    qtbot.waitUntil(lambda: w.stake_problem is None and not w.stake_label.isVisible(), timeout=30_000)
    assert not w.stake_button.isVisible() and not w.jobs_view.notice_frame.isVisible()
    # the Wallet page shows the stake beside the balances, with its own Stake… button
    qtbot.waitUntil(lambda: w.wallet_view.stake_status is not None
                    and w.wallet_view.stake_status.active_wei == 55 * NTK, timeout=30_000)
    assert w.wallet_view.stake_value.text().startswith("55") and w.wallet_view.stake_box.isVisibleTo(w.wallet_view)
    dlg.close()
    if shots:
        w.show_page("Wallet")
        qtbot.wait(300)
        w.grab().save(str(Path(shots) / "wallet-stake.png"))
    w.show_page("Jobs")
    assert [w.jobs_view.lower.tabText(i) for i in range(w.jobs_view.lower.count())] == ["Job detail", "Transfers"]

    w.show_page("Orders")
    ov = w.orders_view
    # the local chain has an order market: both forms start on peer to peer; the job market is a choice
    refreshed = ov.last_refresh_at
    qtbot.waitUntil(lambda: ov.last_refresh_at != refreshed and ov.market_combo.model().item(0).isEnabled(),
                    timeout=20_000)
    assert ov.market_choice() == "p2p" and ov.train_market_combo.currentIndex() == 0
    ov.market_combo.setCurrentIndex(1)
    ov.market_combo.activated.emit(1)  # as a click on the job market does
    assert ov.market_choice() == "jobs" and ov._market_touched
    ov.market_combo.setCurrentIndex(0)
    assert ov.market_choice() == "p2p"
    ov.scene_edit.setText(str(TABLE))
    ov.count_spin.setValue(8)  # 4 frames a shard, the fewest
    ov.shards_spin.setValue(2)
    ov.budget_edit.setText("3")
    ov.post_dataset_button.click()
    qtbot.waitUntil(lambda: ov.confirm_dialog is not None, timeout=20_000)
    assert ov.confirm_dialog.breakdown.total("NTK") == 3 * NTK
    assert ov.confirm_dialog.breakdown.total("ETH") > 0  # the network fee at the chain's gas price
    with qtbot.waitSignal(ov.p2pPosted, timeout=60_000) as posted:
        ov.confirm_dialog.ok_button.click()
    oid = posted.args[0]
    qtbot.waitUntil(lambda: any(o.id == oid for o in ov.p2p_orders), timeout=20_000)
    order = next(o for o in ov.p2p_orders if o.id == oid)
    assert [s.state for s in order.shards] == ["open", "open"] and order.name == "table-top"
    escrow = w.chain_runner.submit(lambda: w._market.p2p_buyer().om.order(oid).escrow_wei).result(30)
    assert escrow == 3 * NTK
    # the buyer's transport node now runs: "Transfers…" on the order goes to Jobs → Transfers, which has its tab
    assert ov.p2p_detail.order.id == oid
    ov.p2p_detail.transfers_button.click()
    assert w.current_page() == "Jobs" and w.jobs_view.lower.currentWidget() is w.jobs_view.transfers
    tabs = w.jobs_view.transfers
    qtbot.waitUntil(lambda: "buyer" in tabs.panels, timeout=10_000)
    if shots:
        qtbot.waitUntil(lambda: tabs.panels["buyer"].view is not None and not tabs.panels["buyer"].view.absent,
                        timeout=10_000)
        qtbot.wait(1500)
        w.grab().save(str(Path(shots) / "jobs-transfers.png"))


def test_a_train_order_posts_through_the_sessions_order_buyer(window, qtbot, tmp_path):
    """The training form on the local chain: peer to peer is its default, the job market a
    choice; a folder's model order goes through the session's OrderBuyerRunner.post_train
    (held-out images into this home's store), after the cost confirmation, escrowed on chain."""
    from jobs.train.synthetic import make_shapes_dataset

    shapes = make_shapes_dataset(tmp_path / "shapes", n_images=40, size=(96, 72), seed=1)
    w = window
    w.show_page("Orders")
    ov = w.orders_view
    ov.forms.setCurrentIndex(1)
    refreshed = ov.last_refresh_at
    qtbot.waitUntil(lambda: ov.last_refresh_at != refreshed and w._market.has_order_market(), timeout=60_000)
    assert ov.train_market_choice() == "p2p"  # the local chain has an order market: the default
    ov.data_combo.setCurrentIndex(ov.data_combo.findData("folder"))
    ov.data_folder_edit.setText(str(shapes))
    ov.holdout_share_spin.setValue(25)
    ov.tolerance_spin.setValue(0.3)  # 10 held-out images: too few for "Automatic"; the least metric is prefilled
    ov.arch_combo.setCurrentText("centernet-xs")
    ov.train_reward_edit.setText("2")
    ov.post_train_button.click()
    qtbot.waitUntil(lambda: ov.confirm_dialog is not None, timeout=60_000)
    assert ov.confirm_dialog.breakdown.total("NTK") == 2 * NTK and ov.confirm_dialog.breakdown.total("ETH") > 0
    with qtbot.waitSignal(ov.p2pPosted, timeout=60_000) as posted:
        ov.confirm_dialog.ok_button.click()
    oid = posted.args[0]
    qtbot.waitUntil(lambda: any(o.id == oid for o in ov.p2p_orders), timeout=20_000)
    order = next(o for o in ov.p2p_orders if o.id == oid)
    assert order.kind == "train" and (order.train.images, order.train.holdout_images) == (30, 10)
    runner = w.chain_runner.submit(w._market.p2p_buyer).result(30)
    assert w.chain_runner.submit(lambda: runner.om.order(oid).escrow_wei).result(30) == 2 * NTK
    assert runner.check_result(oid) is None and w._market.p2p_check_result(oid) is None  # not checked yet
    assert ov.p2p_detail.order.id == oid and ov.p2p_detail.save_button.text() == "Save model…"
