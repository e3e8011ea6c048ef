"""One device's card: what it is, live readings, its mode switch and its limits.

Like NiceHash's device list: the name and the facts that matter on a rig (memory, PCIe
link: an x1 riser shows), the readings, and a three-way switch idle / mining / auto.
The card never calls services: it emits requests, the view forwards them.
"""

from __future__ import annotations

import time

from ui.fmt import is_number, mem_gb, num
from ui.icons import dot
from ui.qt import (
    QButtonGroup, QComboBox, QDoubleSpinBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QSpinBox, Qt,
    QToolButton, QVBoxLayout, QWidget, Signal,
)
from ui.sparkline import Sparkline

MODES = (("idle", "Idle", "Never run jobs on this device"),
         ("mining", "Mining", "Run jobs on this device whenever there is work"),
         ("auto", "Auto", "Run jobs only while you are away from the computer"))


def describe_link(info) -> str:
    """'PCIe 3.0 x1 (riser?)' style text; empty for the CPU or unknown links."""
    gen, width = getattr(info, "pcie_gen", None), getattr(info, "pcie_width", None)
    if not (is_number(gen) and is_number(width)):
        return ""
    text = f"PCIe {int(gen)}.0 x{int(width)}"
    max_w = getattr(info, "pcie_max_width", None)
    if is_number(max_w) and width < max_w:
        text += f" (of x{int(max_w)})"
    if width == 1:
        text += " · riser"
    return text


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe_state(state, away: bool | None, readiness=None) -> tuple[str, str]:
    """(dot colour key, text) for a device's state line. readiness: the rig's
    app.readiness.Readiness (None: not known yet); "ready for jobs" only when it is ready."""
    tel = state.telemetry
    hold = getattr(state, "hold", None)
    if tel is not None and getattr(tel, "lost", False):
        retry = f"; tried again at {time.strftime('%H:%M:%S', time.localtime(hold.until))}" \
            if hold is not None and hold.until else ""
        return "throttled", f"GPU lost: it stopped answering (check power and riser){retry}"
    if hold is not None and hold.source == "watchdog":
        return "throttled", _cap(hold.reason)
    if hold is not None and hold.source == "paused":
        return "idle", "Paused: no new jobs; a running job waits until you resume"
    if state.throttled:
        return "throttled", f"Throttled: {state.throttle_reason or 'over a limit'}; jobs paused"
    if hold is not None:  # outside the mining hours, or stopped while you use the PC
        return "away", _cap(hold.reason) + ("; a running job finishes" if not hold.stops_jobs else "")
    if state.active and getattr(state, "slowed", None):
        return "mining", f"Mining, {state.slowed}"
    if state.active:
        when = "Mining" if state.mode == "mining" else "Mining (you are away)"
        if readiness is None:
            return "away", f"{when}: checking whether the rig can take jobs…"
        if not readiness.ready:
            return "throttled", f"{when}, but claiming nothing: {readiness.reason.removeprefix('Not mining: ')}"
        return "mining", f"{when}: ready for jobs"
    if state.mode == "auto":
        if away is None:
            return "idle", "Auto: can't tell here whether you are away, so it stays idle"
        return "away", "Auto: waiting until you are away"
    return "idle", "Idle"


def floor_decimals(ntk_per_hour: float) -> int:
    """Digits a floor is shown with: two for a price of 0.1 NTK/h and more, four below."""
    return 2 if ntk_per_hour >= 0.1 else 4


def set_floor_decimals(spin: QDoubleSpinBox, ntk_per_hour: float) -> None:
    """Decimals for this size of price, and the least value they can show (never 0)."""
    d = floor_decimals(ntk_per_hour)
    spin.setDecimals(d)
    spin.setRange(10.0 ** -d, 1_000_000)


def floor_spin(ntk_per_hour: float) -> QDoubleSpinBox:
    """A price floor editor: NTK per device-hour, never 0, as wide as its number."""
    spin = QDoubleSpinBox()
    set_floor_decimals(spin, ntk_per_hour)
    spin.setSuffix(" NTK/h")
    spin.setValue(ntk_per_hour)
    spin.setMaximumWidth(spin.fontMetrics().horizontalAdvance("1,000,000.0000 NTK/h") + 40)
    return spin


class DeviceCard(QFrame):
    modeRequested = Signal(str, str)  # device_id, mode
    limitsRequested = Signal(str, object, object)  # device_id, max_temp_c, max_power_w (None = no limit)
    pauseRequested = Signal(str, bool)  # device_id, paused
    inUseRequested = Signal(str, str)  # device_id, "stop" | "slow"
    floorRequested = Signal(str, float)  # device_id, price floor in NTK per device-hour

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(parent)
        self.device_id: str = state.info.id
        self.setObjectName("DeviceCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#DeviceCard { background: palette(base); border: 1px solid palette(mid);"
                           " border-radius: 8px; }"
                           "#DeviceCard QToolButton { padding: 4px 10px; }"
                           "#DeviceCard QToolButton:checked { background: palette(highlight);"
                           " color: palette(highlighted-text); border: 1px solid palette(highlight); }")
        info = state.info

        title = QLabel(info.name)
        f = title.font()
        f.setPointSizeF(f.pointSizeF() * 1.25)
        f.setBold(True)
        title.setFont(f)
        title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.subtitle = QLabel(self._subtitle(info))
        self.subtitle.setStyleSheet("color: palette(placeholder-text);")
        self.subtitle.setWordWrap(True)

        self.mode_group = QButtonGroup(self)
        self.mode_group.setExclusive(True)
        switch = QHBoxLayout()
        switch.setSpacing(0)
        self.mode_buttons: dict[str, QToolButton] = {}
        for key, text, tip in MODES:
            b = QToolButton()
            b.setText(text)
            b.setCheckable(True)
            b.setToolTip(tip)
            b.setMinimumWidth(64)
            b.setAccessibleName(f"{text} mode for {info.name}")
            self.mode_group.addButton(b)
            self.mode_buttons[key] = b
            switch.addWidget(b)
            b.clicked.connect(lambda _=False, m=key: self.modeRequested.emit(self.device_id, m))

        self.pause_button = QToolButton()
        self.pause_button.setCheckable(True)
        self.pause_button.setText("Pause")
        self.pause_button.setToolTip("Pause this device only: no new job, its running job waits")
        self.pause_button.setAccessibleName(f"Pause {info.name}")
        self.pause_button.clicked.connect(lambda on: self.pauseRequested.emit(self.device_id, bool(on)))
        self.in_use = QComboBox()
        self.in_use.addItem("Stop while I use the PC", "stop")
        self.in_use.addItem("Slow down while I use the PC", "slow")
        self.in_use.setToolTip("In Auto mode: stop while you are at the PC, or keep working slowed down "
                               "(lower power limit where the driver allows it, fewer jobs at once)")
        self.in_use.activated.connect(lambda i: self.inUseRequested.emit(self.device_id, self.in_use.itemData(i)))
        self.caps = QLabel(getattr(info, "capability_note", None) or "")
        self.caps.setVisible(bool(self.caps.text()))
        self.caps.setWordWrap(True)
        self.caps.setStyleSheet("color: palette(placeholder-text);")
        if self.caps.text():
            self.caps.setText("Renders; " + self.caps.text())

        head = QHBoxLayout()
        names = QVBoxLayout()
        names.addWidget(title)
        names.addWidget(self.subtitle)
        names.addWidget(self.caps)
        head.addLayout(names, 1)
        controls = QVBoxLayout()
        top = QHBoxLayout()
        top.addLayout(switch)
        top.addSpacing(8)
        top.addWidget(self.pause_button)
        controls.addLayout(top)
        controls.addWidget(self.in_use)
        head.addLayout(controls)

        self.state_dot = QLabel()
        self.state_text = QLabel()
        self.state_text.setWordWrap(True)
        state_row = QHBoxLayout()
        state_row.addWidget(self.state_dot)
        state_row.addWidget(self.state_text, 1)

        self.util_spark = Sparkline(color="#2f80ed", maximum=100)
        self.temp_spark = Sparkline(color="#e67e22", minimum=20, maximum=100)
        self.readings: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        cells = [("util", "Load"), ("temp", "Temp"), ("power", "Power"),
                 ("fan", "Fan"), ("mem", "Memory"), ("clock", "Clock")]
        for i, (key, label) in enumerate(cells):
            cap = QLabel(label)
            cap.setStyleSheet("color: palette(placeholder-text); font-size: 9pt;")
            val = QLabel("–")
            vf = val.font()
            vf.setPointSizeF(vf.pointSizeF() * 1.1)
            val.setFont(vf)
            self.readings[key] = val
            grid.addWidget(cap, 0, i)
            grid.addWidget(val, 1, i)
        sparks = QHBoxLayout()
        sparks.addWidget(self._captioned("Load, last minute", self.util_spark), 1)
        sparks.addWidget(self._captioned("Temperature, last minute", self.temp_spark), 1)

        self.max_temp = QDoubleSpinBox()
        self.max_temp.setRange(30, 110)
        self.max_temp.setDecimals(0)
        self.max_temp.setSuffix(" °C")
        self.max_temp.setToolTip("Above this temperature the device is throttled and its job paused")
        self.max_power = QSpinBox()
        self.max_power.setRange(0, 2000)
        self.max_power.setSpecialValueText("no limit")
        self.max_power.setSuffix(" W")
        self.max_power.setToolTip("Above this power draw the device is throttled; 0 for no limit")
        for w in (self.max_temp, self.max_power):
            w.setKeyboardTracking(False)
            w.editingFinished.connect(self._emit_limits)
        limits = QHBoxLayout()
        limits.addWidget(QLabel("Max temperature"))
        limits.addWidget(self.max_temp)
        limits.addSpacing(12)
        limits.addWidget(QLabel("Max power"))
        limits.addWidget(self.max_power)
        limits.addStretch(1)
        if info.kind == "cpu":
            self.max_power.setEnabled(False)
            self.max_power.setToolTip("The CPU has no power sensor here")

        self.work_label = QLabel()
        self.work_label.setWordWrap(True)
        self.work_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.work_label.setVisible(False)

        box = QVBoxLayout(self)
        box.addLayout(head)
        box.addLayout(state_row)
        box.addWidget(self.work_label)
        box.addLayout(grid)
        box.addLayout(sparks)
        box.addLayout(limits)
        box.addLayout(self._floor_row())
        self._limits_shown: tuple | None = None
        self.readiness = None
        self.update_state(state, None)

    def _floor_row(self) -> QHBoxLayout:
        """The price floor: the least this device takes per expected device-hour."""
        self.floor = floor_spin(0.0)
        self.floor.setKeyboardTracking(False)
        self.floor.setAccessibleName(f"Price floor of {self.device_id}")
        self.floor.editingFinished.connect(lambda: self.floorRequested.emit(self.device_id, float(self.floor.value())))
        self.floor_basis = QLabel()
        self.floor_basis.setWordWrap(True)
        self.floor_basis.setStyleSheet("color: palette(placeholder-text); font-size: 9pt;")
        row = QHBoxLayout()
        row.addWidget(QLabel("Price floor"))
        row.addWidget(self.floor)
        row.addWidget(self.floor_basis, 1)
        return row

    def show_floor(self, ntk_per_hour: float, default_ntk_per_hour: float, basis: str) -> None:
        """The floor set now and the default the benchmark and reference price give (why, in `basis`)."""
        if not self.floor.hasFocus():
            set_floor_decimals(self.floor, ntk_per_hour)
            self.floor.setValue(ntk_per_hour)
        text = f"Default {default_ntk_per_hour:g} NTK/h {basis}"
        self.floor_basis.setText(text)
        self.floor.setToolTip("The miner claims a job on this device only if it pays at least this per expected "
                              f"hour of work.\n{text}")

    @staticmethod
    def _captioned(text: str, w: QWidget) -> QWidget:
        holder = QWidget()
        v = QVBoxLayout(holder)
        v.setContentsMargins(0, 4, 0, 0)
        v.setSpacing(1)
        cap = QLabel(text)
        cap.setStyleSheet("color: palette(placeholder-text); font-size: 8pt;")
        v.addWidget(cap)
        v.addWidget(w)
        return holder

    @staticmethod
    def _subtitle(info) -> str:
        parts = [info.id]
        if info.kind == "cpu":
            if is_number(getattr(info, "cpu_cores", None)):
                parts.append(f"{info.cpu_cores} cores")
            if is_number(getattr(info, "ram_total_mb", None)):
                parts.append(f"{info.ram_total_mb / 1024:.0f} GB RAM")
        else:
            if is_number(info.memory_total_mb):
                parts.append(f"{info.memory_total_mb / 1024:.0f} GB")
            link = describe_link(info)
            if link:
                parts.append(link)
            if getattr(info, "driver_version", None) and isinstance(info.driver_version, str):
                parts.append(f"driver {info.driver_version}")
            if is_number(getattr(info, "power_limit_w", None)):
                parts.append(f"{info.power_limit_w:.0f} W limit")
        return " · ".join(parts)

    def _emit_limits(self) -> None:
        power = self.max_power.value() or None
        self.limitsRequested.emit(self.device_id, float(self.max_temp.value()), float(power) if power else None)

    def set_work(self, text: str | None) -> None:
        """What the device runs now ("order p2p:3 shard 1 render 5 NTK running 40%"), or None."""
        self.work_label.setText(f"Running {text}" if text else "")
        self.work_label.setVisible(bool(text))

    def update_state(self, state, away: bool | None) -> None:
        btn = self.mode_buttons.get(state.mode)
        if btn is not None and not btn.isChecked():
            btn.setChecked(True)
        hold = getattr(state, "hold", None)
        paused = hold is not None and hold.source == "paused"
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.in_use.setEnabled(state.mode == "auto")
        i = self.in_use.findData(getattr(state, "in_use", "stop"))
        if i >= 0 and i != self.in_use.currentIndex() and not self.in_use.hasFocus():
            self.in_use.setCurrentIndex(i)
        key, text = describe_state(state, away, self.readiness)
        self.state_dot.setPixmap(dot(key, 10))
        self.state_text.setText(text)
        self.state_text.setStyleSheet("color: #d35400; font-weight: bold;" if key == "throttled" else "")
        limits = (state.max_temp_c, state.max_power_w)
        if limits != self._limits_shown and not (self.max_temp.hasFocus() or self.max_power.hasFocus()):
            self.max_temp.setValue(state.max_temp_c)
            self.max_power.setValue(int(state.max_power_w or 0))
            self._limits_shown = limits
        t = state.telemetry
        if t is None:
            return
        r = self.readings
        r["util"].setText(num(t.util_pct, "%"))
        r["temp"].setText(num(t.temp_c, "°C"))
        r["power"].setText(num(t.power_w, "W"))
        r["fan"].setText(num(t.fan_pct, "%"))
        r["mem"].setText(mem_gb(t.mem_used_mb, t.mem_total_mb))
        sm, memc = t.clock_sm_mhz, t.clock_mem_mhz
        if is_number(sm) and is_number(memc):
            r["clock"].setText(f"{sm:.0f} / {memc:.0f} MHz")
        else:
            r["clock"].setText(num(sm if is_number(sm) else memc, "MHz"))
        self.util_spark.add(t.util_pct)
        self.temp_spark.add(t.temp_c)
