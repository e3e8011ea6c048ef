"""The Earnings view: NTK (and USD) per day per device, the running total, and knowledge mining
against mining Ethash coins with the same GPUs after electricity, with the figures' dates.

Data comes from app.earnings.EarningsService on the view's runner (never the GUI
thread): one load reads both periods (7 and 30 days), so switching period or device only
redraws. It reloads every `interval_s`, when `refresh()` is called (payments arrived), and
after "Refresh network data". Prices are fetched again every `price_interval_s` (a price feed
is HTTP). New payments found by a reload are announced with `paymentReceived(wei)`; today's
total with `earnedToday(wei)` (the tray's tooltip). NTK stays exact wei until it is drawn.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import date, timedelta

from app.amounts import ntk_float
from ui.background import Background
from ui.charts import (
    COIN_HISTORICAL_COLOR, COIN_NOW_COLOR, KNOWLEDGE_COLOR, chart_view, comparison_chart, running_total_chart,
    stacked_days_chart,
)
from ui.notify import format_ntk
from ui.qt import (
    QButtonGroup, QColor, QComboBox, QEvent, QFrame, QPalette, QGridLayout, QHBoxLayout, QLabel, QPushButton, QScrollArea,
    Qt, QTimer, QToolButton, QVBoxLayout, QWidget, Signal, Slot,
)
from ui.widgets import page_heading

PERIODS = (7, 30)
EMPTY_TEXT = ("No earnings yet: set a device to Mining on the Devices page. "
              "Payments for the jobs it finishes show here, per day and per device.")


@dataclass(frozen=True)
class Loaded:
    """One load from the service (built on the runner's thread)."""

    reports: dict            # period -> EarningsReport
    series: dict             # (period, device key or None) -> DailySeries
    recent: tuple            # payments of yesterday and today (ledger Payment)
    has_gpu: bool


def _usd(v: float) -> str:
    """USD for display: cents, or tenths of a cent below $10."""
    return f"{'-' if v < 0 else ''}${abs(v):,.{3 if abs(v) < 10 else 2}f}"


def _ratio(r: float) -> str:
    """A ratio for display: one decimal from 1 up, two significant digits below."""
    if r >= 100:
        return "> 100 ×"
    return f"{r:.1f} ×" if r >= 1 else f"{r:.2g} ×"


def _field(name: str) -> str:
    """A data-file field name for people: "network_hashrate_hs" -> "network hashrate"."""
    for suffix in ("_hs", "_s", "_usd"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name.replace("_", " ")


def _ntk(wei: int) -> str:
    return f"{format_ntk(wei, 4)} NTK"


def _card() -> QFrame:
    f = QFrame()
    f.setObjectName("card")
    f.setStyleSheet("QFrame#card { border: 1px solid palette(mid); border-radius: 8px; }")
    return f


class EarningsView(QWidget):
    paymentReceived = Signal(object)   # int wei of one new payment
    earnedToday = Signal(object)       # int wei earned today, all devices
    loaded = Signal()

    def __init__(self, *, earnings, devices, runner: Background, interval_s: float = 30.0,
                 price_interval_s: float = 600.0, parent=None):
        super().__init__(parent)
        self._service = earnings
        self._devices = devices
        self._runner = runner
        self._price_interval_s = price_interval_s
        self._prices_at: float | None = None
        self._in_flight = False
        self._again = False
        self._seen: set | None = None
        self.data: Loaded | None = None
        self.period = 7
        self.device_key: str | None = None
        self.error: str | None = None
        self.network_error: str | None = None

        title, self.summary = page_heading("Earnings")
        self.summary.setText("Loading…")
        self.period_buttons = QButtonGroup(self)
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(title)
        titles.addWidget(self.summary)
        head.addLayout(titles, 1)
        for p in PERIODS:
            b = QToolButton()
            b.setText(f"{p} days")
            b.setCheckable(True)
            b.setChecked(p == self.period)
            b.setToolTip(f"Show the last {p} days, today included")
            b.setStyleSheet("QToolButton { padding: 3px 8px; } QToolButton:checked { background: palette(highlight);"
                            " color: palette(highlighted-text); border-radius: 4px; }")
            self.period_buttons.addButton(b, p)
            head.addWidget(b)
        self.period_buttons.idClicked.connect(self.set_period)
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("All devices stacked, or one device")
        self.device_combo.addItem("All devices", None)
        self.device_combo.currentIndexChanged.connect(self._device_chosen)
        head.addWidget(self.device_combo)
        self.network_button = QPushButton("Refresh network data")
        self.network_button.setToolTip("Fetch current Ethash network figures from the address set in "
                                       "Settings → Earnings → Network figures URL")
        self.network_button.setVisible(bool(earnings.ctx.settings.earnings.network_feed_url))  # no source: no button
        self.network_button.clicked.connect(self.refresh_network)
        head.addWidget(self.network_button)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet("background: rgba(230,126,34,0.15); border-radius: 6px; padding: 8px;")

        # ratio and totals
        self.ratio_value = QLabel("–")
        f = self.ratio_value.font()
        f.setPointSizeF(f.pointSizeF() * 3.2)
        f.setBold(True)
        self.ratio_value.setFont(f)
        self.ratio_caption = QLabel()
        self.ratio_caption.setWordWrap(True)
        self.ratio_history = QLabel()
        self.ratio_history.setWordWrap(True)
        self._muted = [self.ratio_history]
        ratio_card = _card()
        rl = QVBoxLayout(ratio_card)
        rl.addWidget(QLabel("<b>Knowledge mining : coin mining</b>"))
        rl.addWidget(self.ratio_value)
        rl.addWidget(self.ratio_caption)
        rl.addWidget(self.ratio_history)
        rl.addStretch(1)
        self.stats: dict[str, tuple[QLabel, QLabel, QLabel]] = {}
        self.net: dict[str, QLabel] = {}
        stats_card = _card()
        sl = QGridLayout(stats_card)
        for col, text in ((2, "gross"), (3, "net of electricity")):
            cap = QLabel(text)
            self._muted.append(cap)
            sl.addWidget(cap, 0, col, Qt.AlignmentFlag.AlignRight)
        for row, (key, label) in enumerate((("today", "Today"), ("period", "Last 7 days"), ("all", "All time")), 1):
            name, value, usd, net = QLabel(label), QLabel("–"), QLabel(""), QLabel("")
            vf = value.font()
            vf.setPointSizeF(vf.pointSizeF() * 1.5)
            vf.setBold(True)
            value.setFont(vf)
            self._muted.append(usd)
            net.setToolTip("What the NTK is worth minus the electricity the devices used while mining "
                           "(Settings → Earnings: NTK and electricity prices)")
            sl.addWidget(name, row, 0)
            sl.addWidget(value, row, 1, Qt.AlignmentFlag.AlignRight)
            sl.addWidget(usd, row, 2, Qt.AlignmentFlag.AlignRight)
            sl.addWidget(net, row, 3, Qt.AlignmentFlag.AlignRight)
            self.stats[key] = (name, value, usd)
            self.net[key] = net
        top = QHBoxLayout()
        top.addWidget(ratio_card, 3)
        top.addWidget(stats_card, 2)

        # earnings charts (or the empty state)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setMinimumHeight(120)
        self.empty.setStyleSheet("font-size: 12pt;")
        self._muted.append(self.empty)
        self.empty.setVisible(False)
        self.daily_title = QLabel("<b>NTK per day</b>")
        self.daily_holder = QVBoxLayout()
        self.cumulative_title = QLabel("<b>Running total</b>")
        self.cumulative_holder = QVBoxLayout()
        self.daily_chart = chart_view(None, 240)
        self.daily_holder.addWidget(self.daily_chart)
        self.cumulative_chart = chart_view(None, 180)
        self.cumulative_holder.addWidget(self.cumulative_chart)

        # coin mining comparison
        self.compare_title = QLabel("<b>Against mining Ethash coins with the same GPUs</b> "
                                    "(net USD per day, after electricity and the pool fee)")
        self.compare_title.setWordWrap(True)
        self.compare_holder = QVBoxLayout()
        self.compare_chart = chart_view(None, 170)
        self.compare_holder.addWidget(self.compare_chart)
        self.compare_note = QLabel()
        self.compare_note.setWordWrap(True)
        self.compare_details = QLabel()
        self.compare_details.setWordWrap(True)
        self.compare_details.setTextFormat(Qt.TextFormat.RichText)
        self.compare_details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sources = QLabel()
        self.sources.setWordWrap(True)
        self.sources.setStyleSheet("font-size: 9pt;")
        self.sources.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        body = QWidget()
        bl = QVBoxLayout(body)
        bl.setSpacing(10)
        bl.addLayout(top)
        bl.addWidget(self.empty)
        bl.addWidget(self.daily_title)
        bl.addLayout(self.daily_holder)
        bl.addWidget(self.cumulative_title)
        bl.addLayout(self.cumulative_holder)
        bl.addWidget(self.compare_title)
        bl.addWidget(self.compare_note)
        bl.addLayout(self.compare_holder)
        bl.addWidget(self.compare_details)
        bl.addWidget(self.sources)
        bl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(body)

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(scroll, 1)
        box.addWidget(self.banner)  # below the page: a message that appears never moves what is under the pointer

        self._apply_muted()
        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)

    # ---- loading (runner thread) ---------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Reload from the service (payments arrived, the timer, a network refresh)."""
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        svc, dev = self._service, self._devices
        fetch_prices = self._prices_at is None or time.monotonic() - self._prices_at >= self._price_interval_s
        if fetch_prices:
            self._prices_at = time.monotonic()

        def load() -> Loaded:
            if fetch_prices:
                svc.refresh_prices()
            infos = list(dev.devices)
            reports, series = {}, {}
            for p in PERIODS:
                rep = svc.report(infos, days=p)
                reports[p] = rep
                series[(p, None)] = svc.daily_series(rep)
                for d in rep.devices:
                    series[(p, d.key)] = svc.daily_series(rep, d.key)
            yesterday = (date.fromisoformat(reports[7].until) - timedelta(days=1)).isoformat()
            recent = tuple(svc.ledger.payments(since_day=yesterday))
            return Loaded(reports, series, recent, any(i.kind != "cpu" for i in infos))

        self._runner.submit(load, on_done=self._apply, on_error=self._failed)

    def _failed(self, err: BaseException) -> None:
        self._in_flight = False
        self.error = f"Could not read the earnings: {err}"
        self._show_banner()
        if self.data is None:
            self.summary.setText("Earnings unavailable")
        self._again_if_asked()

    def _again_if_asked(self) -> None:
        if self._again:
            self._again = False
            self.refresh()

    def _apply(self, data: Loaded) -> None:
        self._in_flight = False
        self.error = None
        keys = {(p.market, p.job_id, p.shard, p.tx_hash) for p in data.recent}
        if self._seen is not None:
            for p in data.recent:
                if (p.market, p.job_id, p.shard, p.tx_hash) not in self._seen:
                    self.paymentReceived.emit(p.amount_wei)
            keys |= self._seen
        self._seen = keys
        changed = data != self.data
        self.data = data
        if changed:  # most timer reloads find nothing new: no redraw, no stall
            self._fill_devices()
            self.redraw()
        self.earnedToday.emit(data.series[(7, None)].total_wei[-1])
        self.loaded.emit()
        self._again_if_asked()

    @Slot(object)
    def record_states(self, states, _away=None) -> None:
        """Feed a DeviceService.poll() result into the energy ledger, on the runner (connect
        DevicesView.statesChanged here so electricity is counted while the GUI runs)."""
        svc, states = self._service, list(states)
        self._runner.submit(lambda: svc.record_states(states), on_error=self._record_failed)

    def _record_failed(self, err: BaseException) -> None:
        self.error = f"Could not record the devices' energy use: {err}"
        self._show_banner()

    def refresh_network(self) -> None:
        """Fetch the Ethash network figures (settings URL) off the GUI thread, then reload."""
        self.network_button.setEnabled(False)
        self.network_button.setText("Refreshing…")
        svc = self._service

        def done(nd) -> None:
            self._network_done(None)
            self.refresh()

        self._runner.submit(lambda: svc.refresh_network(), on_done=done, on_error=self._network_done)

    def _network_done(self, err: BaseException | None) -> None:
        self.network_button.setEnabled(True)
        self.network_button.setText("Refresh network data")
        self.network_error = f"Network data not refreshed: {err}" if err is not None else None
        self._show_banner()

    # ---- drawing (GUI thread) ------------------------------------------------------------
    def set_period(self, days: int) -> None:
        self.period = days if days in PERIODS else 7
        self.period_buttons.button(self.period).setChecked(True)
        self.redraw()

    def _device_chosen(self, _index: int) -> None:
        self.device_key = self.device_combo.currentData()
        self.redraw()

    def _fill_devices(self) -> None:
        rep = self.data.reports[30]
        wanted = [(d.key, d.name if d.id is None else f"{d.name} ({d.id})") for d in rep.devices]
        have = [(self.device_combo.itemData(i), self.device_combo.itemText(i)) for i in range(1, self.device_combo.count())]
        if wanted == have:
            return
        self.device_combo.blockSignals(True)
        while self.device_combo.count() > 1:
            self.device_combo.removeItem(1)
        for key, name in wanted:
            self.device_combo.addItem(name, key)
        i = self.device_combo.findData(self.device_key) if self.device_key else 0
        self.device_combo.setCurrentIndex(max(i, 0))
        self.device_key = self.device_combo.currentData()
        self.device_combo.blockSignals(False)

    def _show_banner(self) -> None:
        msgs = [m for m in (self.error, self.network_error) if m]
        if self.data is not None:
            rep = self.data.reports[self.period]
            if rep.prices.message:
                msgs.append(f"Price feed: {rep.prices.message}")
            if rep.network_data.message:
                msgs.append(rep.network_data.message[:1].upper() + rep.network_data.message[1:])
        self.banner.setText("\n".join(msgs))
        self.banner.setVisible(bool(msgs))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.data is not None:
            self.redraw()  # charts take their colours from the palette

    def _apply_muted(self) -> None:
        """Secondary text: the text colour blended 40% towards the background (readable in
        both themes, unlike palette(mid) on a dark window)."""
        pal = self.palette()
        fg, bg = pal.color(QPalette.ColorRole.WindowText), pal.color(QPalette.ColorRole.Window)
        mix = QColor(int(fg.red() * 0.6 + bg.red() * 0.4), int(fg.green() * 0.6 + bg.green() * 0.4),
                     int(fg.blue() * 0.6 + bg.blue() * 0.4))
        for w in self._muted:
            p = w.palette()
            p.setColor(QPalette.ColorRole.WindowText, mix)
            w.setPalette(p)

    def redraw(self) -> None:
        self._apply_muted()
        self.network_button.setVisible(bool(self._service.ctx.settings.earnings.network_feed_url))
        self._show_banner()
        if self.data is None:
            return
        rep = self.data.reports[self.period]
        series = self.data.series.get((self.period, self.device_key)) or self.data.series[(self.period, None)]
        names = {d.key: d.name for d in rep.devices}
        self._draw_stats(rep, series)
        self._draw_earnings(series, names)
        self._draw_comparison(rep)
        self._draw_sources(rep)

    def _draw_stats(self, rep, series) -> None:
        p = rep.prices
        today, period, total = series.total_wei[-1], sum(series.total_wei), series.cumulative_wei[-1]
        for key, wei in (("today", today), ("period", period), ("all", total)):
            name, value, usd = self.stats[key]
            value.setText(_ntk(wei))
            usd.setText(f"≈ {_usd(series.usd(wei))}")
        chosen = [d for d in rep.devices if self.device_key is None or d.key == self.device_key]
        for key, net in (("today", sum(x.net_usd for d in chosen for x in d.days if x.day == rep.until)),
                         ("period", sum(x.net_usd for d in chosen for x in d.days))):
            self.net[key].setText(_usd(net))
            self.net[key].setStyleSheet("color: #e5534b;" if net < 0 else "")
        self.net["all"].setText("–")
        self.net["all"].setToolTip("Electricity is counted per day for the periods shown; all time shows gross only")
        self.stats["period"][0].setText(f"Last {self.period} days")
        who = "all devices" if self.device_key is None else next(
            (d.name for d in rep.devices if d.key == self.device_key), self.device_key)
        markets = ""
        bm = getattr(rep, "by_market", None)
        if self.device_key is None and bm:  # what each market paid in the period, side by side
            markets = f"job market {_ntk(bm.get('job', 0))} · order market {_ntk(bm.get('order', 0))} · "
        self.summary.setText(f"{who} · today {_ntk(today)} · last {self.period} days {_ntk(period)} · "
                             f"{markets}NTK at {_usd(p.ntk_usd)}")

    @staticmethod
    def _set_chart(view, chart) -> None:
        """Show `chart` in `view` (one view per chart kind, reused: building views is the slow
        part), or hide the view when `chart` is None."""
        view.setVisible(chart is not None)
        if chart is None:
            return
        old = view.chart()
        view.setChart(chart)
        if old is not None:
            old.deleteLater()

    def _draw_earnings(self, series, names: dict) -> None:
        pal = self.palette()
        empty = series.cumulative_wei[-1] == 0
        self.empty.setVisible(empty)
        for w in (self.daily_title, self.cumulative_title):
            w.setVisible(not empty)
        if empty:
            self.empty.setText(EMPTY_TEXT if self.device_key is None else
                               "No earnings yet on this device: set it to Mining on the Devices page.")
            self._set_chart(self.daily_chart, None)
            self._set_chart(self.cumulative_chart, None)
            return
        rows = [(names.get(k, k), [ntk_float(w) for w in v]) for k, v in series.device_wei.items()]
        price = series.ntk_usd
        first, last = (date.fromisoformat(d).strftime("%d %b").lstrip("0") for d in (series.days[0], series.days[-1]))
        self.daily_title.setText(f"<b>NTK per day</b>, {first} – {last} (right axis: USD at {_usd(price)} per NTK)")
        chart = stacked_days_chart(series.days, rows or [("NTK", [0.0] * len(series.days))], unit="NTK",
                                   second_unit="USD", second_factor=price, palette=pal)
        self._set_chart(self.daily_chart, chart)
        self.cumulative_title.setText(f"<b>Running total</b>: {_ntk(series.cumulative_wei[-1])} all time")
        line = running_total_chart(series.days, [ntk_float(w) for w in series.cumulative_wei], unit="NTK", palette=pal)
        self._set_chart(self.cumulative_chart, line)

    def _draw_comparison(self, rep) -> None:
        keys = None if self.device_key is None else [self.device_key]
        rig = rep.compare_rig(keys)
        pal = self.palette()
        if not rig:
            self.ratio_value.setText("–")
            if not self.data.has_gpu:
                why = ("The Ethash comparison needs an NVIDIA GPU: this machine mines with its CPU only, "
                       "and nobody mines Ethash coins on a CPU.")
            else:
                why = "No Ethash comparison for this device (only NVIDIA GPUs with a known hashrate have one)."
            self.ratio_caption.setText(why)
            self.ratio_history.setText("")
            self.compare_note.setText(why)
            self._set_chart(self.compare_chart, None)
            self.compare_details.setText("")
            # no ratio to show: no big dash, and the reason once (in the card), not twice
            for w in (self.ratio_value, self.compare_title, self.compare_note):
                w.setVisible(False)
            return
        for w in (self.ratio_value, self.compare_title, self.compare_note):
            w.setVisible(True)
        now = next((c for c in rig.values() if not c.network.historical), None)
        past = next((c for c in rig.values() if c.network.historical), None)
        head = now or past
        gpus = ", ".join(head.gpus)
        knowledge = head.knowledge_net_usd
        if head.knowledge_wei == 0:
            self.ratio_value.setText("–")
            verb = "net" if head.coin_net_usd >= 0 else "lose"
            self.ratio_caption.setText(f"No earnings in the last {self.period} days to compare yet. "
                                       f"Mining {head.network.coin} with {gpus} would {verb} "
                                       f"{_usd(abs(head.coin_net_usd))} a day after electricity.")
        elif head.ratio is not None:
            self.ratio_value.setText(_ratio(head.ratio))
            self.ratio_caption.setText(f"Knowledge mining nets {_usd(knowledge)} a day (last {self.period} days) "
                                       f"against {_usd(head.coin_net_usd)} mining {head.network.coin} "
                                       f"with {gpus}.")
        else:
            self.ratio_value.setText(f"{_usd(knowledge)} vs {_usd(head.coin_net_usd)}")
            self.ratio_value.setToolTip("knowledge mining vs coin mining, net USD per day")
            self.ratio_caption.setText(f"Per day after electricity: knowledge mining against mining "
                                       f"{head.network.coin} with {gpus}, which loses money now.")
        self.ratio_history.setText("" if past is None or past is head or head.knowledge_wei == 0 else
                                   f"Against ETH in its last proof-of-work days ({past.network.as_of}, historical): "
                                   + (_ratio(past.ratio) if past.ratio is not None else "no ratio"))
        self.compare_note.setText(f"Compared: {gpus}. Knowledge mining: your earnings of the last {self.period} days "
                                  "minus their electricity, per day.")
        rows = [(f"Knowledge mining (last {self.period} days)", knowledge, KNOWLEDGE_COLOR)]
        for c in rig.values():
            tag = f"{c.network.coin}, historical ({c.network.as_of})" if c.network.historical else \
                f"{c.network.coin} now ({c.network.as_of})"
            rows.append((f"Mining {tag}", c.coin_net_usd,
                         COIN_HISTORICAL_COLOR if c.network.historical else COIN_NOW_COLOR))
        chart = comparison_chart(rows, unit="USD per day", palette=pal)
        self._set_chart(self.compare_chart, chart)
        self.compare_details.setText(self._details_table(rep, keys))

    def _details_table(self, rep, keys) -> str:
        cell = "padding: 2px 10px 2px 0;"
        text = self.palette().color(QPalette.ColorRole.WindowText).name()
        head = "".join(f"<th align='{a}' style='{cell}'>{h}</th>" for h, a in (
            ("GPU", "left"), ("Network", "left"), ("Coins/day", "right"), ("Gross", "right"),
            (f"Pool fee ({self._service.ctx.settings.earnings.pool_fee * 100:g} %)", "right"),
            ("Power", "right"), ("Net/day", "right")))
        rows = []
        for d in rep.devices:
            if (keys is not None and d.key not in keys) or not d.coin.available:
                continue
            g = d.coin.gpu
            for c in d.coin.networks.values():
                n, day = c.network, c.day
                label = html.escape(n.label)
                color = "#e5534b" if day.net_usd < 0 else text
                rows.append(
                    f"<tr><td style='{cell}'>{html.escape(d.name)}<br><small>{g.mh_s:g} MH/s, {d.coin.watts:g} W"
                    f"</small></td><td style='{cell}'>{label}<br><small>figures {html.escape(n.as_of)}, "
                    f"{n.coin} {_usd(c.price_usd)}</small></td>"
                    f"<td align='right' style='{cell}'>{day.coins:.5f} {n.coin}</td>"
                    f"<td align='right' style='{cell}'>{_usd(day.gross_usd)}</td>"
                    f"<td align='right' style='{cell}'>{_usd(day.pool_fee_usd)}</td>"
                    f"<td align='right' style='{cell}'>{day.energy_kwh:.2f} kWh = {_usd(day.power_cost_usd)}</td>"
                    f"<td align='right' style='{cell} color: {color};'><b>{_usd(day.net_usd)}</b></td></tr>")
        return f"<table cellspacing='0'><tr>{head}</tr>{''.join(rows)}</table>"

    def _draw_sources(self, rep) -> None:
        p, nd = rep.prices, rep.network_data
        origin = "bundled with the app" if nd.origin == "bundled" else nd.origin
        nets = "; ".join(f"{n.coin} as of {n.as_of}" + (" (historical: no PoW since the Merge, 15 Sep 2022)"
                                                         if n.historical else "")
                         for n in nd.networks.values())
        estimates = sorted({f"{n.coin} {_field(k)}" for n in nd.networks.values() for k in (n.estimates or {})})
        as_of = f", as of {p.as_of}" if p.as_of else ""
        text = (f"Prices: NTK {_usd(p.ntk_usd)}, electricity {_usd(p.electricity_usd_per_kwh)}/kWh, from {p.source}"
                f"{as_of}. Network figures: {origin} ({nets}).")
        if estimates:
            text += f" Estimated figures: {', '.join(estimates)}."
        self.sources.setText(text)


__all__ = ["EarningsView", "EMPTY_TEXT", "Loaded"]
