"""Fleet figures: metrics scrape time and size for a rig with 8 GPUs (NVML stand-in), the
Fleet page with 10 rigs (10 metrics servers on 127.0.0.1 ports), and the watchdog's time
from a GPU fault to the job failed and the device held.

    .venv/bin/python bench/bench_fleet.py [--scrapes 200] [--screenshot docs/screenshots/fleet.png]

The Fleet page runs offscreen unless DISPLAY is set (xvfb-run for a real X server); with
--screenshot it expands two rigs and saves the window. Uses a throwaway KMINER_HOME. Prints
one line per figure and a JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scrape_figures(n_scrapes: int) -> dict:
    from app.fleet import MetricsServer, parse_metrics
    from tests.fleet.conftest import StandinRig

    rig = StandinRig(8, name="rig-8gpu")
    srv = MetricsServer("127.0.0.1", 0).start()
    try:
        build = []
        for _ in range(20):
            t0 = time.perf_counter()
            srv.update(rig.snapshot())
            build.append(time.perf_counter() - t0)
        times, size = [], 0
        for _ in range(n_scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(srv.url, timeout=5) as r:
                body = r.read()
            times.append(time.perf_counter() - t0)
            size = len(body)
        t0 = time.perf_counter()
        samples = parse_metrics(body)
        parse_s = time.perf_counter() - t0
    finally:
        srv.stop()
        rig.close()
    return {"devices": 9, "bytes": size, "samples": len(samples), "scrape_ms_median": statistics.median(times) * 1e3,
            "scrape_ms_p95": sorted(times)[int(0.95 * len(times)) - 1] * 1e3, "parse_ms": parse_s * 1e3,
            "snapshot_and_render_ms_median": statistics.median(build) * 1e3}


def fleet_page(screenshot: str | None) -> dict:
    from PySide6.QtWidgets import QApplication

    from app.context import AppContext
    from app.fleet import FleetWatcher, MetricsServer, Readiness
    from tests.fleet.conftest import StandinRig
    from ui.background import Background
    from ui.fleet_view import FleetView

    app = QApplication.instance() or QApplication(sys.argv[:1])
    rigs = []
    for i in range(10):
        rig = StandinRig(8 if i % 2 == 0 else 6, name=f"rig-{i + 1:02d}", number=i)
        rig.nv.set_reading(1, util_pct=0, temp_c=88, power_w=95) if i == 2 else None
        if i == 3:
            rig.nv.lose(5)
        if i == 6:
            rig.devices.set_paused("cuda:2", True)
        srv = MetricsServer("127.0.0.1", 0).start()
        ready = Readiness(False, "offline", "waiting for RPC (retry in 16 s)") if i == 8 else Readiness(True, "ready", "Ready for jobs")
        srv.update(rig.snapshot(ready, earned_today_wei={"cpu": (i + 1) * 10**17}))
        rigs.append((rig, srv))
    ctx = AppContext.open()
    ctx.settings.fleet.rigs = [s.url for _, s in rigs]
    rigs[9][1].stop()  # one rig is down
    runner = Background("fleet")
    watcher = FleetWatcher(lambda: ctx.settings.fleet.rigs, timeout_s=2.0)
    view = FleetView(ctx=ctx, watcher=watcher, runner=runner, interval_s=60)
    view.resize(1180, 760)
    view.show()
    done = []
    view.refreshed.connect(lambda v: done.append(time.perf_counter()))
    t0 = time.perf_counter()
    view.refresh()
    while not done and time.perf_counter() - t0 < 20:
        app.processEvents()
        time.sleep(0.01)
    first = done[0] - t0 if done else None
    for i in (2, 3):
        view.tree.topLevelItem(i).setExpanded(True)
    for _ in range(30):
        app.processEvents()
        time.sleep(0.01)
    if screenshot:
        view.grab().save(screenshot)
    out = {"rigs": 10, "online": sum(1 for v in view.views if v.online), "first_scrape_s": first,
           "summary": view.summary.text()}
    view.shutdown()
    runner.shutdown()
    watcher.close()
    for rig, srv in rigs:
        srv.stop()
        rig.close()
    return out


def devices_page(path: str) -> None:
    """The Devices page of a mixed rig: a paused card, one outside its mining hours, one
    slowed while in use, an AMD card without ROCm torch, a lost GPU held by the watchdog."""
    from datetime import datetime

    from PySide6.QtWidgets import QApplication

    from app.context import AppContext
    from app.devices import DeviceService
    from tests.gpu.amdsmi_standin import RX_580, make_amd_standin
    from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin
    from ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    nv = make_standin(gpus=[RTX_3070_X1, RTX_3090_X16])
    nv.allow_power_limit = True
    ctx = AppContext.open()
    ctx.settings.general.telemetry_interval_s = 0.3
    devices = DeviceService(ctx, nvml_module=nv, amd_module=make_amd_standin(gpus=[RX_580]), idle=lambda: 0.0)
    devices.control.now = lambda: datetime(2024, 6, 3, 12, 0)
    devices.set_mode("cuda:0", "auto")
    devices.set_in_use("cuda:0", "slow")
    devices.set_mode("cuda:1", "mining")
    devices.set_schedule("cuda:1", "mon-fri 23:00-07:00; sat,sun")
    devices.set_mode("amd:0", "mining")
    devices.set_paused("amd:0", True)
    devices.set_mode("cpu", "mining")
    w = MainWindow(ctx=ctx, devices=devices, tray=False)
    w.resize(1180, 1000)
    w.show()
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    w.grab().save(path)
    w.quit()


def watchdog_figure() -> dict:
    from app.context import AppContext
    from app.devices import DeviceService
    from tests.gpu.nvml_standin import make_standin

    nv = make_standin()
    devices = DeviceService(AppContext.open(), nvml_module=nv, idle=lambda: None)
    devices.set_mode("cuda:0", "mining")
    events = []
    devices.watchdog.subscribe(lambda ev: events.append((time.perf_counter(), ev.kind)))
    devices.poll()
    nv.lose(0)
    t0 = time.perf_counter()
    devices.poll()
    to_fail = devices.watchdog.jobs_to_fail({"job": (devices.device("cuda:0").key, False)})
    t1 = time.perf_counter()
    devices.close()
    return {"fault_to_held_and_job_named_ms": (t1 - t0) * 1e3, "events": [k for _, k in events],
            "job_reason": to_fail[0][1] if to_fail else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--screenshot", default=None, help="save the Fleet page with 10 rigs here (PNG)")
    ap.add_argument("--devices-shot", default=None, help="save the Devices page of a mixed rig here (PNG)")
    args = ap.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if not os.environ.get("DISPLAY") else "xcb")
    with tempfile.TemporaryDirectory() as home:
        os.environ["KMINER_HOME"] = home
        s = scrape_figures(args.scrapes)
        print(f"8-GPU rig: {s['bytes']} bytes, {s['samples']} samples; scrape {s['scrape_ms_median']:.2f} ms median "
              f"({s['scrape_ms_p95']:.2f} ms p95) on 127.0.0.1; parse {s['parse_ms']:.2f} ms; "
              f"snapshot+render {s['snapshot_and_render_ms_median']:.2f} ms")
        w = watchdog_figure()
        print(f"watchdog: GPU fault -> device held and its job named {w['fault_to_held_and_job_named_ms']:.2f} ms "
              f"within one poll ({w['events']})")
        if args.devices_shot:
            devices_page(args.devices_shot)
        f = fleet_page(args.screenshot)
        print(f"Fleet page: {f['rigs']} rigs, {f['online']} online; first scrape shown after {f['first_scrape_s']:.3f} s; "
              f"{f['summary']}")
    print(json.dumps({"scrape": s, "watchdog": w, "fleet_page": f}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
