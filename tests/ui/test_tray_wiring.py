"""The tray wired to the Earnings and Jobs views as the main window is meant to wire them:
real payments in a real Ledger become one coalesced notice, today's earnings and the active
jobs reach the tooltip, and a real job that fails becomes a "Job failed" notice."""

from __future__ import annotations

import time

from app.earnings import EarningsService
from app.runtime import JobsService, open_queue, runtime_config
from jobs.execute import Device, execute_attempt
from jobs.spec import parse_spec
from ui.background import Background
from ui.earnings_view import EarningsView
from ui.jobs_view import JobsView
from ui.tray import TrayIcon

NTK = 10**18


def test_payments_and_a_failed_job_reach_the_tray(qtbot, ctx, devices):
    ctx.settings.jobs.allow_code_jobs_basic = True
    earnings = EarningsService(ctx)
    jobs = JobsService(ctx)
    runners = [Background("earnings"), Background("jobs"), Background("devices")]
    tray = TrayIcon(devices=devices, runner=runners[2], notify_interval_s=0.5)
    ev = EarningsView(earnings=earnings, devices=devices, runner=runners[0])
    jv = JobsView(jobs=jobs, runner=runners[1], interval_s=0.2)
    qtbot.addWidget(ev)
    qtbot.addWidget(jv)
    # the wiring asked of the main window
    ev.paymentReceived.connect(tray.notify_payment)
    ev.earnedToday.connect(tray.set_earned_today)
    jv.jobFailed.connect(tray.notify_job_failed)
    jv.activeJobs.connect(tray.set_active_jobs)
    shown = []
    tray.noticeShown.connect(shown.append)
    q = open_queue(ctx)
    try:
        qtbot.waitUntil(lambda: ev.data is not None and jv._states is not None, timeout=5000)
        for job, amount in enumerate((5 * NTK, 4 * NTK, NTK // 2, 8 * NTK), start=1):
            earnings.ledger.record_payment(job, "0x" + f"{job:064x}", amount, timestamp=time.time(), device_key="cpu")
            if job in (1, 2):  # the first arrives alone, the rest together
                with qtbot.waitSignal(ev.loaded, timeout=5000):
                    ev.refresh()
        with qtbot.waitSignal(ev.loaded, timeout=5000):
            ev.refresh()
        qtbot.waitUntil(lambda: len(shown) == 2, timeout=5000)
        assert [n.message for n in shown] == ["5 NTK", "3 payments received: 12.5 NTK"]
        assert "Today: 17.5 NTK · 0 active jobs" in tray.toolTip()

        cfg = runtime_config(ctx)
        sha = cfg.store.put_bytes(b"def run(ctx):\n    raise RuntimeError('GPU fell off the riser')\n")
        q.add(parse_spec({"id": "doomed", "kind": "python", "inputs": {"module": {"sha256": sha}},
                          "resources": {"max_wall_s": 30}}))
        execute_attempt(q, cfg, "doomed", Device("cpu"))
        qtbot.waitUntil(lambda: len(shown) == 3, timeout=5000)
        assert shown[2].title == "Job failed" and shown[2].message == "doomed: RuntimeError: GPU fell off the riser"
    finally:
        q.close()
        ev.timer.stop()
        jv.timer.stop()
        for r in runners:
            r.shutdown()
        jobs.close()
        earnings.close()
        tray.deleteLater()
