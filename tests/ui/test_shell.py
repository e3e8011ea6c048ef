"""The window's shell: settings dialog, About box, theme, window state, shortcuts."""

from app.context import AppContext
from tests.ui.layout_checks import clipped_labels
from ui.qt import QApplication, QPalette, QTimer


def test_settings_dialog_is_generated_from_the_model_and_saves(qtbot, make_window, devices, ctx):
    from ui.settings_dialog import SettingsDialog

    w = make_window(devices)
    dlg = SettingsDialog(ctx.settings, w)
    qtbot.addWidget(dlg)
    tabs = [dlg.tabs.tabText(i) for i in range(dlg.tabs.count())]
    assert tabs[:2] == ["General", "Jobs"] and "Wallet" in tabs
    dlg.show()
    for i in range(dlg.tabs.count()):   # no text cut off on any tab
        dlg.tabs.setCurrentIndex(i)
        qtbot.wait(20)
        assert not clipped_labels(dlg), (tabs[i], clipped_labels(dlg))
    dlg.tabs.setCurrentIndex(0)
    assert ("general", "tray_notice_shown") not in dlg.editors
    away = dlg.editors[("general", "away_minutes")]
    assert away.toolTip().startswith("In auto mode")
    away.setValue(3)
    dlg.editors[("general", "theme")].setCurrentText("dark")
    dlg.accept()
    assert dlg.result()  # accepted
    w.apply_settings(dlg.result_sections)
    saved = AppContext.open(ctx.paths).settings
    assert saved.general.away_minutes == 3 and saved.general.theme == "dark"
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 100
    w.apply_settings({"general": saved.general.model_copy(update={"theme": "light"})})
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 150


def test_invalid_setting_is_shown_at_its_field_and_nothing_is_saved(qtbot, make_window, devices, ctx):
    from ui.settings_dialog import SettingsDialog

    before = ctx.paths.settings_file.read_bytes() if ctx.paths.settings_file.exists() else None
    dlg = SettingsDialog(ctx.settings)
    qtbot.addWidget(dlg)
    dlg.editors[("wallet", "rpc_url")].setText("localhost 8545")
    dlg.accept()
    assert not dlg.result()
    err = dlg.error_labels[("wallet", "rpc_url")]
    assert err.isVisibleTo(dlg) and "URL" in err.text()
    assert dlg.tabs.tabText(dlg.tabs.currentIndex()) == "Wallet"
    after = ctx.paths.settings_file.read_bytes() if ctx.paths.settings_file.exists() else None
    assert before == after


def test_open_settings_via_the_shortcut_path(qtbot, make_window, devices, ctx):
    w = make_window(devices)

    def accept_it():
        w._dialog.editors[("jobs", "cpu_slots")].setValue(2)
        w._dialog.accept()

    QTimer.singleShot(100, accept_it)
    assert w.open_settings()
    assert AppContext.open(ctx.paths).settings.jobs.cpu_slots == 2
    assert w.settings_action.shortcut().toString() == "Ctrl+,"


def test_about_box_shows_versions_and_the_log_folder(qtbot, make_window, devices, ctx):
    from ui.about import AboutDialog

    dlg = AboutDialog(ctx.paths, "6.x")
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    assert not clipped_labels(dlg)
    text = dlg.label.text()
    assert "Knowledge Miner 0." in text and str(ctx.paths.log_dir) in text
    assert dict(dlg.info.packages)["torch"] != "not installed"


def test_window_geometry_and_page_are_remembered(qtbot, make_window, devices, ctx):
    w = make_window(devices)
    w.show()
    w.resize(700, 560)
    w.move(20, 10)
    w.close()  # all idle: quits, saving the state
    saved = AppContext.open(ctx.paths).settings.general
    assert saved.window_geometry and saved.window_page == "Devices"
    ctx.settings = AppContext.open(ctx.paths).settings
    w2 = make_window(devices)
    assert (w2.width(), w2.height()) == (700, 560)


def test_market_jobs_under_basic_is_off_with_its_risk_in_plain_sight(qtbot, ctx):
    """Issue 15: the switch is off by default and the dialog states the risk beside it."""
    from jobs.level_policy import MARKET_BASIC_RISK
    from ui.settings_dialog import SettingsDialog

    dlg = SettingsDialog(ctx.settings)
    qtbot.addWidget(dlg)
    box = dlg.editors[("jobs", "allow_market_jobs_basic")]
    assert not box.isChecked()
    risk = dlg.warnings[("jobs", "allow_market_jobs_basic")]
    dlg.show()
    dlg.tabs.setCurrentIndex(1)
    assert risk.isVisible() and risk.text() == MARKET_BASIC_RISK
    dlg.editors[("jobs", "input_hosts")].setText("nas.local,  192.168.1.20")
    box.setChecked(True)
    dlg.accept()
    jobs = dlg.result_sections["jobs"]
    assert jobs.allow_market_jobs_basic and jobs.input_host_set() == {"nas.local", "192.168.1.20"}
