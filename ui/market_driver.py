"""Drives the desktop app's market session (app.market_session.MarketSession): one pass every few
seconds on the chain runner, never on the GUI thread, and never two at once.

Signals (GUI thread): `stepped(StepReport)` after each pass; `paymentReceived(int wei)` per
payment the miner received; `notReady(str)` when the market cannot open (locked wallet, node
down) — said once per distinct reason.
"""

from __future__ import annotations

import logging

from ui.background import Background
from ui.qt import QObject, QTimer, Signal

log = logging.getLogger(__name__)


class MarketDriver(QObject):
    stepped = Signal(object)
    paymentReceived = Signal(object)
    notReady = Signal(str)

    def __init__(self, session, chain_runner: Background, *, interval_s: float = 2.0, parent=None):
        super().__init__(parent)
        self.session = session
        self._chain = chain_runner
        self._in_flight = False
        self._last_reason: str | None = None
        self.last_report = None
        self.timer = QTimer(self)
        self.timer.setInterval(int(interval_s * 1000))
        self.timer.timeout.connect(self.poke)

    def start(self) -> None:
        self.timer.start()
        QTimer.singleShot(0, self.poke)

    def stop(self) -> None:
        self.timer.stop()

    def poke(self) -> None:
        """Run a pass now unless one is running."""
        if self._in_flight:
            return
        self._in_flight = True
        fut = self._chain.submit(self.session.step, on_done=self._done, on_error=self._failed)
        if fut is None:
            self._in_flight = False

    def _done(self, rep) -> None:
        self._in_flight = False
        self.last_report = rep
        if not rep.ready and rep.message != self._last_reason:
            self.notReady.emit(rep.message or "")
        self._last_reason = None if rep.ready else rep.message
        for wei in rep.paid_wei:
            self.paymentReceived.emit(wei)
        self.stepped.emit(rep)

    def _failed(self, err: BaseException) -> None:
        self._in_flight = False
        log.warning("market pass failed: %s", err)
