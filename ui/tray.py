"""The tray icon: shows mining / idle / throttled; its tooltip says how many devices mine, what
was earned today and how many jobs run; its menu shows the window, starts or stops mining on
every device, snoozes mining for an hour, and quits. Payment and job-failure notices go
through a rate limiter (ui.notify) so a burst becomes one message.

Snooze (needs `devices` and `runner`): every device not in Idle is put in Idle and its mode
remembered (in memory); after the hour, or on "Resume now", each device that is still Idle
gets its remembered mode back exactly (a device the user changed meanwhile is left alone).
Start / Stop on all ends a snooze without restoring (the user said what he wants).
Device changes run on `runner` (the devices runner); callbacks on the GUI thread.
"""

from __future__ import annotations

import time
from typing import Callable

from ui.icons import state_icon
from ui.notify import Notice, NotificationLimiter, format_ntk
from ui.readiness_banner import readiness_line
from ui.qt import QAction, QMenu, QSystemTrayIcon, QTimer, Signal

SNOOZE_S = 3600.0
SNOOZE_CHECK_MS = 5000


def overall_state(states, readiness=None) -> str:
    """The icon's state; "blocked" when devices are set to mine but the rig cannot claim."""
    if any(s.throttled for s in states):
        return "throttled"
    if any(s.active for s in states):
        return "blocked" if readiness is not None and not readiness.ready else "mining"
    return "idle"


class TrayIcon(QSystemTrayIcon):
    showRequested = Signal()
    modeAllRequested = Signal(str)
    quitRequested = Signal()
    modesChanged = Signal()          # snooze put devices idle or restored them: refresh the Devices view
    snoozeChanged = Signal(object)   # the snooze end (unix seconds) or None
    noticeShown = Signal(object)     # a ui.notify.Notice that was shown

    def __init__(self, parent=None, *, devices=None, runner=None, notify_interval_s: float = 60.0,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        """devices: app DeviceService and runner: the devices Background (both or neither;
        without them there is no snooze). clock: wall time for "until HH:MM"; monotonic: the
        rate limiter's clock."""
        super().__init__(state_icon("idle"), parent)
        self._devices = devices
        self._runner = runner
        self._clock = clock
        self._monotonic = monotonic
        self.state = "idle"
        self.snoozed_until: float | None = None
        self.snoozed_modes: dict[str, str] = {}
        self._busy = False
        self._states_line = "Knowledge Miner"
        self._throttled_line = ""
        self._summary_line = ""
        self._readiness_line = ""  # until the market's first pass says (the window feeds it)
        self.readiness = None
        self._states: list = []
        self._today_wei, self._active_jobs = 0, 0
        self.limiter = NotificationLimiter(notify_interval_s)

        menu = QMenu()
        self.show_action = QAction("Show Knowledge Miner", menu)
        self.start_action = QAction("Start mining on all devices", menu)
        self.stop_action = QAction("Stop mining on all devices", menu)
        self.snooze_action = QAction("Snooze 1 h", menu)
        self.snooze_action.setToolTip("Put every mining device in Idle for an hour, then back to its mode")
        self.resume_action = QAction("Resume now", menu)
        self.quit_action = QAction("Quit", menu)
        self.show_action.triggered.connect(self.showRequested)
        self.start_action.triggered.connect(lambda: self._mode_all("mining"))
        self.stop_action.triggered.connect(lambda: self._mode_all("idle"))
        self.snooze_action.triggered.connect(lambda: self.snooze())
        self.resume_action.triggered.connect(self.resume)
        self.quit_action.triggered.connect(self.quitRequested)
        items = [self.show_action, None, self.start_action, self.stop_action]
        if devices is not None and runner is not None:
            items += [self.snooze_action, self.resume_action]
        items += [None, self.quit_action]
        for a in items:
            menu.addSeparator() if a is None else menu.addAction(a)
        self.resume_action.setVisible(False)
        self._menu = menu
        self.setContextMenu(menu)
        self.activated.connect(self._activated)

        self._snooze_timer = QTimer(self)
        self._snooze_timer.setInterval(SNOOZE_CHECK_MS)
        self._snooze_timer.timeout.connect(self._check_snooze)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self._flush_notices)
        self._update_tooltip()

    def _activated(self, reason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.showRequested.emit()

    # ---- state and tooltip ---------------------------------------------------------------
    def update_states(self, states, away) -> None:
        self._states = list(states)
        self._set_icon_state()
        mining = sum(1 for s in states if s.active and not s.throttled)
        throttled = [s.info.name for s in states if s.throttled]
        self._states_line = f"Knowledge Miner: {mining} of {len(states)} devices mining"
        self._throttled_line = f"Throttled: {', '.join(throttled)}" if throttled else ""
        if self.snoozed_until is None:
            self.snooze_action.setEnabled(any(s.mode != "idle" for s in states))
        self._update_tooltip()

    def _set_icon_state(self) -> None:
        state = overall_state(self._states, self.readiness)
        if state != self.state:
            self.state = state
            self.setIcon(state_icon(state))

    def set_readiness(self, readiness) -> None:
        """The rig's app.readiness.Readiness: its line in the tooltip, orange when it cannot claim."""
        self.readiness = readiness
        self._readiness_line = readiness_line(readiness)
        self._set_icon_state()
        self._update_tooltip()

    def update_summary(self, earned_today_wei: int, active_jobs: int) -> None:
        """Today's earnings (NTK wei, exact) and the number of running jobs, for the tooltip."""
        self._today_wei, self._active_jobs = int(earned_today_wei), int(active_jobs)
        jobs = f"{active_jobs} active job{'s' if active_jobs != 1 else ''}"
        self._summary_line = f"Today: {format_ntk(int(earned_today_wei))} NTK · {jobs}"
        self._update_tooltip()

    def set_earned_today(self, wei: int) -> None:
        """`update_summary` with only today's earnings changed (EarningsView.earnedToday)."""
        self.update_summary(wei, self._active_jobs)

    def set_active_jobs(self, n: int) -> None:
        """`update_summary` with only the active jobs changed (JobsView.activeJobs)."""
        self.update_summary(self._today_wei, n)

    def _update_tooltip(self) -> None:
        lines = [self._states_line, self._readiness_line, self._throttled_line, self._summary_line]
        if self.snoozed_until is not None:
            lines.append(f"Snoozed until {self.snooze_text()}")
        self.setToolTip("\n".join(x for x in lines if x))

    def snooze_text(self) -> str:
        return time.strftime("%H:%M", time.localtime(self.snoozed_until)) if self.snoozed_until else ""

    # ---- snooze --------------------------------------------------------------------------
    def snooze(self, duration_s: float = SNOOZE_S) -> None:
        """Put every device that is not Idle in Idle for `duration_s`, remembering its mode."""
        if self._devices is None or self._runner is None or self._busy or self.snoozed_until is not None:
            return
        devices = self._devices
        self._busy = True

        def work() -> dict[str, str]:
            saved = {s.info.id: s.mode for s in devices.states() if s.mode != "idle"}
            for device_id in saved:
                devices.set_mode(device_id, "idle")
            return saved

        def done(saved: dict[str, str]) -> None:
            self._busy = False
            if not saved:
                self.showMessage("Nothing to snooze", "No device is mining.",
                                 QSystemTrayIcon.MessageIcon.Information, 4000)
                return
            self.snoozed_modes = saved
            self.snoozed_until = self._clock() + duration_s
            self._snooze_timer.setInterval(int(min(SNOOZE_CHECK_MS, duration_s * 1000)))
            self._snooze_timer.start()
            self._show_snooze()
            self.modesChanged.emit()

        self._runner.submit(work, on_done=done, on_error=self._snooze_failed)

    def resume(self) -> None:
        """End the snooze now: each remembered device still in Idle gets its mode back."""
        if self.snoozed_until is None or self._busy:
            return
        devices, saved = self._devices, dict(self.snoozed_modes)
        self._busy = True

        def work() -> None:
            for device_id, mode in saved.items():
                try:
                    if devices.state(device_id).mode == "idle":
                        devices.set_mode(device_id, mode)
                except ValueError:  # the device is gone (GPU removed): nothing to restore
                    pass

        def done(_=None) -> None:
            self._busy = False
            self._end_snooze()
            self.modesChanged.emit()

        self._runner.submit(work, on_done=done, on_error=self._snooze_failed)

    def resume_blocking(self) -> None:
        """Restore the snoozed modes at once on this thread (the app is quitting: settings
        writes only, fast). Safe when not snoozed."""
        if self.snoozed_until is None or self._devices is None:
            return
        for device_id, mode in self.snoozed_modes.items():
            try:
                if self._devices.state(device_id).mode == "idle":
                    self._devices.set_mode(device_id, mode)
            except ValueError:
                pass
        self._end_snooze()

    def _snooze_failed(self, err: BaseException) -> None:
        self._busy = False
        self.showMessage("Snooze failed", str(err), QSystemTrayIcon.MessageIcon.Warning, 6000)

    def _check_snooze(self) -> None:
        if self.snoozed_until is not None and self._clock() >= self.snoozed_until:
            self.resume()

    def _end_snooze(self) -> None:
        self.snoozed_until = None
        self.snoozed_modes = {}
        self._snooze_timer.stop()
        self._show_snooze()

    def _show_snooze(self) -> None:
        snoozed = self.snoozed_until is not None
        self.snooze_action.setText(f"Snoozed until {self.snooze_text()}" if snoozed else "Snooze 1 h")
        self.snooze_action.setEnabled(not snoozed)
        self.resume_action.setVisible(snoozed)
        self._update_tooltip()
        self.snoozeChanged.emit(self.snoozed_until)

    def _mode_all(self, mode: str) -> None:
        if self.snoozed_until is not None:
            self._end_snooze()  # an explicit start/stop wins over the snooze's memory
        self.modeAllRequested.emit(mode)

    # ---- notifications -------------------------------------------------------------------
    def notify_payment(self, amount_wei: int) -> None:
        """A payment arrived (NTK wei): shown now, or coalesced with the next ones."""
        self._show_notice(self.limiter.payment(int(amount_wei), self._monotonic()))

    def notify_job_failed(self, job_id: str, reason: str | None) -> None:
        self._show_notice(self.limiter.job_failed(job_id, reason, self._monotonic()))

    def notify_watchdog(self, event) -> None:
        """An app.devices.WatchdogEvent: a device held, its job failed (retries are not shown)."""
        if getattr(event, "kind", None) in ("fault", "job_failed"):
            self._show_notice(self.limiter.watchdog(event.line(), self._monotonic()))

    def _show_notice(self, notice: Notice | None) -> None:
        if notice is not None:
            icon = (QSystemTrayIcon.MessageIcon.Warning if notice.kind in ("job_failed", "watchdog")
                    else QSystemTrayIcon.MessageIcon.Information)
            self.showMessage(notice.title, notice.message, icon, 6000)
            self.noticeShown.emit(notice)
        due = self.limiter.next_due()
        if due is not None and not self._notice_timer.isActive():
            self._notice_timer.start(max(0, int((due - self._monotonic()) * 1000)) + 20)

    def _flush_notices(self) -> None:
        for notice in self.limiter.due(self._monotonic()):
            self._show_notice(notice)
        due = self.limiter.next_due()
        if due is not None and not self._notice_timer.isActive():
            self._notice_timer.start(max(0, int((due - self._monotonic()) * 1000)) + 20)
