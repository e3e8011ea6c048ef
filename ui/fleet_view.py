"""The Fleet page: several rigs watched by their metrics URLs (each runs `kminer agent` with its
metrics port on), one row per rig (online or not, its devices' states, jobs, NTK today, when
last seen) that opens to one row per device; add and remove rigs by URL.

Scraping runs on the "fleet" background runner (app.fleet.FleetWatcher.scrape: every rig at
once, a time limit each), never on the GUI thread; a scrape still running skips the next tick.
Also `WatchdogRelay`: the devices' watchdog events (any thread) as a Qt signal on the GUI thread.
"""

from __future__ import annotations

import time
from collections import Counter

from app.fleet import check_metrics_url
from ui.background import Background
from ui.qt import (
    QBrush, QColor, QHBoxLayout, QLabel, QLineEdit, QObject, QPushButton, Qt, QTimer, QTreeWidget, QTreeWidgetItem,
    QVBoxLayout, QWidget, Signal,
)
from ui.widgets import page_heading

COLUMNS = ("Rig", "State", "Devices", "Jobs", "NTK today", "Last seen")
_GOOD = ("mining", "slowed")
_BAD = ("held", "lost", "throttled")


class WatchdogRelay(QObject):
    """Re-emits `devices.watchdog` events (app.devices.WatchdogEvent) as `event` on the GUI thread."""

    event = Signal(object)

    def __init__(self, devices, parent=None):
        super().__init__(parent)
        wd = getattr(devices, "watchdog", None)
        self._unsubscribe = wd.subscribe(self.event.emit) if wd is not None else (lambda: None)

    def close(self) -> None:
        self._unsubscribe()


def ago(ts: float | None, now: float) -> str:
    """"12 s ago", "5 min ago", "14:03" (older than an hour), "never"."""
    if ts is None:
        return "never"
    d = max(0.0, now - ts)
    if d < 60:
        return f"{d:.0f} s ago"
    if d < 3600:
        return f"{d / 60:.0f} min ago"
    return time.strftime("%H:%M", time.localtime(ts))


def devices_text(view) -> str:
    """"8 GPUs + CPU: 7 mining, 1 held"."""
    if not view.devices:
        return "–"
    gpus = sum(1 for d in view.devices if d.kind != "cpu")
    cpu = any(d.kind == "cpu" for d in view.devices)
    head = f"{gpus} GPU{'s' if gpus != 1 else ''}" + (" + CPU" if cpu else "")
    states = Counter(d.state.replace("_", " ") for d in view.devices)
    return head + ": " + ", ".join(f"{n} {s}" for s, n in states.most_common())


def short_name(name: str) -> str:
    """"RTX 3070" for "NVIDIA GeForce RTX 3070", "RX 6800" for "AMD Radeon RX 6800"."""
    for prefix in ("NVIDIA GeForce ", "NVIDIA ", "AMD Radeon ", "Radeon "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _num(v, unit: str, fmt: str = "{:.0f}") -> str:
    return "" if v is None else fmt.format(v) + unit


class FleetView(QWidget):
    """`ctx`: the AppContext (Settings.fleet.rigs, saved on add/remove); `watcher`: an
    app.fleet.FleetWatcher over those URLs; `runner`: the Background the scrapes run on."""

    refreshed = Signal(object)  # list of app.fleet.RigView

    def __init__(self, *, ctx, watcher, runner: Background, interval_s: float = 5.0, parent=None):
        super().__init__(parent)
        self._ctx = ctx
        self._watcher = watcher
        self._runner = runner
        self._in_flight = False
        self.views: list = []
        self.last_scrape_s: float | None = None

        title, self.summary = page_heading("Fleet")
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("A rig's metrics URL, e.g. http://192.168.1.20:9108/metrics")
        self.url_edit.returnPressed.connect(self.add_rig)
        self.add_button = QPushButton("Add rig")
        self.add_button.clicked.connect(self.add_rig)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setEnabled(False)
        self.remove_button.clicked.connect(self.remove_selected)
        add_row = QHBoxLayout()
        add_row.addWidget(self.url_edit, 1)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.remove_button)
        self.message = QLabel()
        self.message.setStyleSheet("color: #c0392b;")
        self.message.setVisible(False)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.itemSelectionChanged.connect(
            lambda: self.remove_button.setEnabled(self._selected_url() is not None))
        self.tree.itemExpanded.connect(lambda _item: self._fit_columns())
        self.empty = QLabel("No rigs watched yet. On each rig set a metrics port "
                            "(kminer settings set fleet.metrics_port 9108), start `kminer agent`, "
                            "and add its URL here.")
        self.empty.setWordWrap(True)

        box = QVBoxLayout(self)
        box.addWidget(title)
        box.addWidget(self.summary)
        box.addLayout(add_row)
        box.addWidget(self.message)
        box.addWidget(self.empty)
        box.addWidget(self.tree, 1)
        self._show_views([])

        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    # ---- rigs -----------------------------------------------------------------------------
    def urls(self) -> list[str]:
        return list(self._ctx.settings.fleet.rigs)

    def add_rig(self) -> None:
        try:
            url = check_metrics_url(self.url_edit.text())
        except ValueError as e:
            self._say(str(e))
            return
        if url in self.urls():
            self._say(f"{url} is watched already")
            return
        self._ctx.settings.fleet.rigs = [*self.urls(), url]
        self._ctx.save_settings()
        self.url_edit.clear()
        self._say(None)
        self.refresh()

    def remove_selected(self) -> None:
        url = self._selected_url()
        if url is None:
            return
        self._ctx.settings.fleet.rigs = [u for u in self.urls() if u != url]
        self._ctx.save_settings()
        self.views = [v for v in self.views if v.url != url]
        self._show_views(self.views)
        self.refresh()

    def _selected_url(self) -> str | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        item = items[0]
        while item.parent() is not None:
            item = item.parent()
        return item.data(0, Qt.ItemDataRole.UserRole)

    def _say(self, text: str | None) -> None:
        self.message.setText(text or "")
        self.message.setVisible(bool(text))

    # ---- scraping -------------------------------------------------------------------------
    def refresh(self) -> None:
        if self._in_flight:
            return
        self._in_flight = True
        t0 = time.perf_counter()
        watcher = self._watcher

        def done(views) -> None:
            self._in_flight = False
            self.last_scrape_s = time.perf_counter() - t0
            self._show_views(views)

        def failed(err: BaseException) -> None:
            self._in_flight = False
            self._say(f"Could not read the rigs: {err}")

        self._runner.submit(watcher.scrape, on_done=done, on_error=failed)

    def _show_views(self, views) -> None:
        self.views = list(views)
        now = time.time()
        expanded = {self.tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole) for i in range(self.tree.topLevelItemCount())
                    if self.tree.topLevelItem(i).isExpanded()}
        selected = self._selected_url()
        self.tree.clear()
        for v in self.views:
            item = self._rig_item(v, now)
            self.tree.addTopLevelItem(item)
            item.setExpanded(v.url in expanded)
            if v.url == selected:
                item.setSelected(True)
        self._fit_columns()
        self.empty.setVisible(not self.urls())
        self.tree.setVisible(bool(self.urls()))
        online = sum(1 for v in self.views if v.online)
        mining = sum(1 for v in self.views if v.online for d in v.devices if d.state in _GOOD)
        held = sum(1 for v in self.views if v.online for d in v.devices if d.state in _BAD)
        n = len(self.urls())
        text = f"{n} rig{'s' if n != 1 else ''} · {online} online · {mining} devices mining"
        if held:
            text += f" · {held} held, lost or throttled"
        self.summary.setText(text)
        self.refreshed.emit(self.views)

    def _fit_columns(self) -> None:
        for c in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(c)

    def _rig_item(self, v, now: float) -> QTreeWidgetItem:
        if v.online:
            state = "online" if v.ready is not False else "online, not ready"
        else:
            state = "offline"
        item = QTreeWidgetItem([v.name, state, devices_text(v), str(v.jobs_running) if v.online else "",
                                f"{v.earned_today_ntk:.4g}" if v.devices else "", ago(v.last_seen, now)])
        item.setData(0, Qt.ItemDataRole.UserRole, v.url)
        item.setToolTip(0, v.url)
        tip = v.error if not v.online else (v.reason or "ready for jobs")
        item.setToolTip(1, f"{state}: {tip}" if tip else state)
        if not v.online:
            for c in range(len(COLUMNS)):
                item.setForeground(c, QBrush(QColor("#c0392b")))
        elif v.ready is False:
            item.setForeground(1, QBrush(QColor("#d35400")))
        for d in v.devices:
            readings = " · ".join(x for x in (short_name(d.name), _num(d.temp_c, " °C"), _num(d.power_w, " W"),
                                              _num(d.util_pct, " %")) if x)
            child = QTreeWidgetItem([d.device, d.state.replace("_", " "), readings,
                                     str(d.jobs_running) if d.jobs_running else "", "", ""])
            child.setToolTip(0, d.name)
            if d.state in _BAD:
                child.setForeground(1, QBrush(QColor("#c0392b")))
            item.addChild(child)
        return item

    def shutdown(self) -> None:
        self.timer.stop()
