"""The first-run network page says which networks have a market and where real jobs come from
(networks with none are listed apart, as having no jobs), and the Settings dialog's Transfers
section (generated from app.settings.TransportSettings) checks relays as host:port."""

from __future__ import annotations

import json
import os

import pytest

from app.first_run import FirstRun
from tests.ui.layout_checks import clipped_labels
from ui.background import Background
from wallet.keystore import Keystore

SHOTS = os.environ.get("KMINER_SCREENSHOTS")  # a folder: the tests save what they show there


def shot(widget, name: str) -> None:
    if SHOTS:
        widget.grab().save(os.path.join(SHOTS, name))


@pytest.fixture
def network_page(qtbot, ctx):
    from ui.first_run import NetworkPage

    runner = Background("chain")
    made = []

    def make():
        flow = FirstRun(ctx, keystore=Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True))
        page = NetworkPage(flow, runner)
        qtbot.addWidget(page)
        page.resize(760, 420)
        page.show()
        made.append(page)
        return page

    yield make
    runner.shutdown(wait=True)


def items(page) -> list[tuple[str | None, str]]:
    c = page.combo
    return [(c.itemData(i), c.itemText(i)) for i in range(c.count())]


def test_the_network_page_says_where_jobs_come_from_and_lists_networks_without_a_market_apart(qtbot, network_page):
    page = network_page()
    assert "No market is known on any public network yet" in page.where.text()
    assert "no bridged NTK" in page.where.text()
    rows = items(page)
    assert rows[0][0] == "local" and "test market on this computer" in rows[0][1]
    assert rows[1] == (None, "")  # the separator: below it, networks with no market
    below = rows[2:]
    assert {n for n, _ in below} >= {"mainnet", "base", "arbitrum", "sepolia", "devnet"}
    assert all(text.endswith("no market: no jobs") for _, text in below)
    base = next(t for n, t in below if n == "base")
    assert "chain id 8453" in base and "main network" in base and "OP-stack: L1 data fee" in base
    page.combo.setCurrentIndex(page.combo.findData("base"))
    assert "No jobs: no market is known here" in page.hint.text() and page.rpc_edit.isEnabled()
    page.combo.setCurrentIndex(page.combo.findData("local"))
    assert "Only the jobs you post yourself" in page.hint.text() and not page.rpc_edit.isEnabled()
    qtbot.wait(20)
    assert not clipped_labels(page)
    shot(page, "first-run-networks.png")
    if SHOTS:
        page.combo.showPopup()
        qtbot.wait(100)
        shot(page.combo.view().window(), "first-run-networks-list.png")
        page.combo.hidePopup()


def test_a_network_with_a_deployment_file_is_offered_with_its_market(qtbot, network_page, ctx):
    ctx.paths.chain_dir.mkdir(parents=True, exist_ok=True)
    dep = {"chain_id": 84532, "ntk": "0x" + "11" * 20, "job_market": "0x" + "22" * 20, "model_market": "0x" + "33" * 20,
           "order_market": "0x" + "44" * 20, "block": 7, "deployer": "0x" + "55" * 20, "network": "base-sepolia"}
    (ctx.paths.chain_dir / "deployment-84532.json").write_text(json.dumps(dep))
    page = network_page()
    rows = items(page)
    assert [n for n, _ in rows[:3]] == ["local", "base-sepolia", None]
    assert rows[1][1].endswith("market: yours")
    assert "markets are known on: Base Sepolia" in page.where.text()
    page.combo.setCurrentIndex(page.combo.findData("base-sepolia"))
    assert "Jobs that buyers post on this market" in page.hint.text() and "0x" + "44" * 20 in page.hint.text()


def test_settings_transfers_section_checks_relays_and_saves_them(qtbot, ctx):
    from ui.settings_dialog import SettingsDialog

    dlg = SettingsDialog(ctx.settings)
    qtbot.addWidget(dlg)
    tabs = [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())]
    assert "Transfers" in tabs
    dlg.resize(900, 640)
    dlg.show()
    dlg.tabs.setCurrentIndex(tabs.index("Transfers"))
    qtbot.wait(20)
    assert not clipped_labels(dlg)
    for field in ("port", "advertise", "port_mapping", "upload_kib_s", "download_kib_s", "quota_gb", "relays",
                  "grace_hours"):
        assert ("transport", field) in dlg.editors, field
    relays = dlg.editors[("transport", "relays")]
    relays.setText("relay.example.org:6881, http://evil/")
    dlg.accept()
    assert not dlg.result()
    err = dlg.error_labels[("transport", "relays")]
    assert err.isVisibleTo(dlg) and err.text().startswith("'http://evil/' is not host:port") and "\n" not in err.text()
    assert dlg.tabs.tabText(dlg.tabs.currentIndex()) == "Transfers"
    shot(dlg, "settings-transfers-error.png")
    relays.setText("relay.example.org:6881 ,  [2001:db8::1]:6881")
    dlg.editors[("transport", "upload_kib_s")].setValue(512)
    dlg.accept()
    t = dlg.result_sections["transport"]
    assert t.relay_list() == ("relay.example.org:6881", "[2001:db8::1]:6881") and t.upload_kib_s == 512


def test_the_wallet_network_choices_say_which_have_a_market(ctx):
    from app.account import network_choices

    has = {c.name: c.has_market for c in network_choices(ctx)}
    assert has["local"] and not has["base"] and not has["sepolia"]
    ctx.paths.chain_dir.mkdir(parents=True, exist_ok=True)
    dep = {"chain_id": 11155111, "ntk": "0x" + "11" * 20, "job_market": "0x" + "22" * 20,
           "model_market": "0x" + "33" * 20, "block": 7, "deployer": "0x" + "55" * 20}
    (ctx.paths.chain_dir / "deployment-11155111.json").write_text(json.dumps(dep))
    assert {c.name for c in network_choices(ctx) if c.has_market} == {"local", "sepolia"}


def test_the_transfers_panel_shows_a_real_node_serving_a_folder(qtbot, tmp_path):
    import time as _time

    from app.orders import Peer
    from ui.transfers_view import TransfersPanel

    data = tmp_path / "data"
    peer = Peer.open(data, host="127.0.0.1", identity_key=b"\x33" * 32)
    try:
        folder = tmp_path / "shard-1"
        folder.mkdir()
        (folder / "frame_000.bin").write_bytes(os.urandom(300_000))
        peer.node.share(folder, until_ts=_time.time() + 7200, reader="0x" + "cd" * 20, kind="result")
        panel = TransfersPanel(data / "transport", interval_ms=100)
        qtbot.addWidget(panel)
        panel.resize(900, 220)
        panel.show()
        qtbot.waitUntil(lambda: panel.table.rowCount() == 1 and panel.table.cellWidget(0, 3).value() == 1000,
                        timeout=15000)
        assert panel.summary.text().startswith("Running · port ")
        assert panel.table.item(0, 0).text() == "Serving" and panel.table.item(0, 2).text() == "0x" + "cd" * 20
        assert panel.table.cellWidget(0, 3).format() == "100.0% serving"
        shot(panel, "transfers-panel.png")
    finally:
        peer.close()
    (data / "transport" / "status.json").write_bytes(b"[" * 50_000)
    panel.refresh()
    assert "cannot be read" in panel.summary.text() and panel.table.rowCount() == 0
