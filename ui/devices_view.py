"""The Devices view: one card per device, refreshed live without blocking the GUI.

Readings come from `DeviceService.poll()` on the "devices" background runner once per
telemetry interval; mode and limit changes go through the same runner, so they are
serialised with polling and never block the event loop.
"""

from __future__ import annotations

import time

from app.floors import floor_views, set_floor
from ui.background import Background
from ui.widgets import MessageStrip, page_heading
from ui.device_card import DeviceCard
from ui.qt import (
    QHBoxLayout, QLabel, QScrollArea, QTimer, QToolButton, QVBoxLayout, QWidget, Signal,
)


class DevicesView(QWidget):
    statesChanged = Signal(object, object)  # list of DeviceState, away (bool | None)

    def __init__(self, *, devices, runner: Background, interval_s: float = 1.0, parent=None):
        super().__init__(parent)
        self._service = devices
        self._runner = runner
        self._in_flight = False
        self.last_poll_at: float | None = None
        self.states = list(devices.states())
        self.away: bool | None = None
        self.readiness = None
        self.work: dict[str, str] = {}
        """Device key -> what it runs (set_work)."""
        self.floors: dict = {}

        title, self.summary = page_heading("Devices")
        self.start_all = QToolButton()
        self.start_all.setText("Start mining on all")
        self.start_all.setToolTip("Put every device in Mining mode")
        self.stop_all = QToolButton()
        self.stop_all.setText("Stop all")
        self.stop_all.setToolTip("Put every device in Idle mode")
        self.start_all.clicked.connect(lambda: self.request_all("mining"))
        self.stop_all.clicked.connect(lambda: self.request_all("idle"))
        head = QHBoxLayout()
        titles = QVBoxLayout()
        titles.addWidget(title)
        titles.addWidget(self.summary)
        head.addLayout(titles, 1)
        head.addWidget(self.start_all)
        head.addWidget(self.stop_all)

        self.banner = QLabel(devices.message or "")
        self.banner.setWordWrap(True)
        self.banner.setVisible(bool(devices.message))
        self.banner.setStyleSheet("background: rgba(47,128,237,0.12); border-radius: 6px; padding: 8px;")

        self.cards: dict[str, DeviceCard] = {}
        holder = QWidget()
        self._cards_box = QVBoxLayout(holder)
        self._cards_box.setSpacing(12)
        for st in self.states:
            self._add_card(st)
        self._cards_box.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(holder)

        self.errors = MessageStrip({"error": "background: rgba(230,126,34,0.15);"})  # keeps its space: no jumps

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addWidget(self.banner)
        box.addWidget(scroll, 1)
        box.addWidget(self.errors)
        self._update_summary()

        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        QTimer.singleShot(0, self.refresh)
        QTimer.singleShot(0, self.load_floors)

    def _add_card(self, state) -> None:
        card = DeviceCard(state)
        card.readiness = self.readiness
        card.modeRequested.connect(self.request_mode)
        card.limitsRequested.connect(self.request_limits)
        card.pauseRequested.connect(self.request_pause)
        card.inUseRequested.connect(self.request_in_use)
        card.floorRequested.connect(self.request_floor)
        self.cards[state.info.id] = card
        self._cards_box.insertWidget(len(self.cards) - 1, card)

    # -- polling -------------------------------------------------------------------
    def refresh(self) -> None:
        """Ask for fresh readings; skipped while the previous poll is still running."""
        if self._in_flight:
            return
        self._in_flight = True
        service = self._service
        self._runner.submit(lambda: (service.poll(), service.user_away()),
                            on_done=self._apply, on_error=self._failed)

    def _apply(self, result) -> None:
        self._in_flight = False
        if self.errors.kind == "error" and self.errors.message.startswith("Could not read"):
            self.errors.show_message("")  # the devices answer again
        states, away = result
        self.last_poll_at = time.monotonic()
        self.states = list(states)
        self.away = away
        for st in self.states:
            card = self.cards.get(st.info.id)
            if card is None:
                self._add_card(st)
                card = self.cards[st.info.id]
            card.update_state(st, away)
        self._update_summary()
        self.statesChanged.emit(self.states, away)

    def _failed(self, err: BaseException) -> None:
        self._in_flight = False
        self.errors.show_message(f"{err}" if isinstance(err, ValueError) else f"Could not read the devices: {err}",
                                 "error")

    def set_work(self, by_key: dict[str, str]) -> None:
        """Show on each card what its device runs (device key -> text, from the market's pass;
        a device not named runs nothing)."""
        self.work = dict(by_key)
        for st in self.states:
            card = self.cards.get(st.info.id)
            if card is not None:
                card.set_work(self.work.get(st.info.key))

    def set_readiness(self, readiness) -> None:
        """Show the rig's app.readiness.Readiness on the cards of mining devices."""
        if readiness == self.readiness:
            return
        self.readiness = readiness
        for st in self.states:
            card = self.cards.get(st.info.id)
            if card is not None:
                card.readiness = readiness
                card.update_state(st, self.away)

    def load_floors(self) -> None:
        """Read each device's floor and its default (benchmark file) on the runner."""
        ctx, infos = self._service.ctx, list(self._service.devices)
        self._runner.submit(lambda: floor_views(ctx, infos), on_done=self._show_floors, on_error=self._failed)

    def _show_floors(self, views: dict) -> None:
        self.floors = views
        for device_id, v in views.items():
            card = self.cards.get(device_id)
            if card is not None:
                card.show_floor(v.ntk_per_hour or v.default.ntk_per_hour, v.default.ntk_per_hour, v.default.basis)

    def request_floor(self, device_id: str, ntk_per_hour: float) -> None:
        ctx, key = self._service.ctx, self._service.device(device_id).key
        self._runner.submit(lambda: set_floor(ctx, key, ntk_per_hour), on_done=lambda _: self.load_floors(),
                            on_error=self._failed)

    def _update_summary(self) -> None:
        self.start_all.setEnabled(any(s.mode != "mining" for s in self.states))
        self.stop_all.setEnabled(any(s.mode != "idle" for s in self.states))
        n = len(self.states)
        mining = sum(1 for s in self.states if s.active and not s.throttled)
        throttled = sum(1 for s in self.states if s.throttled)
        text = f"{n} device{'s' if n != 1 else ''} · {mining} mining"
        if throttled:
            text += f" · {throttled} throttled"
        if any(s.mode == "auto" for s in self.states):
            text += {True: " · you are away", False: " · you are here", None: " · away: unknown"}[self.away]
        self.summary.setText(text)

    # -- requests --------------------------------------------------------------------
    def request_mode(self, device_id: str, mode: str) -> None:
        service = self._service
        self._runner.submit(lambda: service.set_mode(device_id, mode), on_done=lambda _: self.refresh_now(),
                            on_error=self._failed)

    def request_all(self, mode: str) -> None:
        service = self._service
        self._runner.submit(lambda: service.set_all_modes(mode), on_done=lambda _: self.refresh_now(),
                            on_error=self._failed)

    def request_limits(self, device_id: str, max_temp_c, max_power_w) -> None:
        service = self._service
        self._runner.submit(lambda: service.set_limits(device_id, max_temp_c=max_temp_c, max_power_w=max_power_w),
                            on_done=lambda _: self.refresh_now(), on_error=self._failed)

    def _change(self, change) -> None:
        """Run `change(service)` on the devices runner, then refresh (errors show in the banner)."""
        service = self._service
        self._runner.submit(lambda: change(service), on_done=lambda _: self.refresh_now(), on_error=self._failed)

    def request_pause(self, device_id: str, paused: bool) -> None:
        self._change(lambda svc: svc.set_paused(device_id, paused))

    def request_in_use(self, device_id: str, policy: str) -> None:
        self._change(lambda svc: svc.set_in_use(device_id, policy))

    def refresh_now(self) -> None:
        self.refresh()
