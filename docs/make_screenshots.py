"""Render the app's main views into docs/screenshots/ (run under Xvfb: `make screenshots`).

Each view is built with the real services on this machine, given a few seconds of live
polling so charts have data, and grabbed as the window a person would see.
`--standin` adds a second devices shot with two GPUs from the tests' NVML stand-in, to show
what a rig looks like; it is labelled as such in the README.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _run_example_jobs() -> None:
    """Real jobs for the Jobs page: the python example run to completion in the sandbox,
    one that fails its time limit, and one left queued."""
    import json
    import subprocess

    ex = ROOT / "resources" / "examples" / "python_job.json"
    subprocess.run([sys.executable, "-m", "app", "job", "run", str(ex)], cwd=ROOT, capture_output=True, timeout=300)
    data = json.loads(ex.read_text())
    from app.context import AppContext
    from app.jobs_service import open_queue
    from jobs.spec import parse_spec

    q = open_queue(AppContext.open())
    for suffix in ("retry", "queued"):
        d = dict(data, id=f"{data['id']}-{suffix}")
        q.add(parse_spec(d), spec_dir=ex.parent)
    n = q.start_attempt(f"{data['id']}-retry", device_id="cpu", sandbox="strict", job_dir=Path(tempfile.mkdtemp()))
    q.finish_attempt(f"{data['id']}-retry", n, status="failed", reason="wall-clock limit of 600 s reached")
    q.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--seconds", type=float, default=6.0, help="live polling before each shot")
    ap.add_argument("--standin", action="store_true", help="also shoot the devices view with stand-in GPUs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KMINER_HOME", tempfile.mkdtemp(prefix="kminer-shots-"))
    sys.path.insert(0, str(ROOT))

    from PySide6.QtWidgets import QApplication

    from app.context import AppContext
    from app.devices_service import DeviceService
    from app.status import sandbox_status
    from ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Knowledge Miner")

    from ui.theme import apply_theme

    from app.jobs_service import JobsService

    def shoot(devices, name: str, modes: dict[str, str], theme: str = "light", page: int = 0) -> None:
        ctx = devices.ctx
        apply_theme(app, theme)
        for dev, mode in modes.items():
            devices.set_mode(dev, mode)
        w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), sandbox=sandbox_status(ctx.settings),
                       tray=False)
        w.resize(1000, 720)
        w.nav.setCurrentRow(page)
        w.show()
        _pump(app, args.seconds)
        path = out / f"{name}.png"
        w.grab().save(str(path))
        print(f"wrote {path}")
        w.quit()

    ctx = AppContext.open()
    ctx.settings.general.telemetry_interval_s = 0.5
    shoot(DeviceService(ctx), "devices", {"cpu": "mining"})
    _run_example_jobs()
    shoot(DeviceService(ctx), "jobs", {"cpu": "mining"}, page=1)
    if args.standin:
        from tests.gpu.nvml_standin import RTX_3070_X1, RTX_3090_X16, make_standin

        nv = make_standin(gpus=[RTX_3070_X1, RTX_3090_X16])
        nv.set_reading(0, util_pct=97, temp_c=64, power_w=118, fan_pct=55, mem_used_mb=3100,
                       clock_sm_mhz=1905, clock_mem_mhz=7000)
        nv.set_reading(1, util_pct=0, temp_c=88, power_w=95, fan_pct=80)
        ctx2 = AppContext.open()
        ctx2.settings.general.telemetry_interval_s = 0.5
        shoot(DeviceService(ctx2, nvml_module=nv, idle=lambda: 30.0), "devices-rig-standin",
              {"cuda:0": "mining", "cuda:1": "mining", "cpu": "auto"})
        shoot(DeviceService(ctx2, nvml_module=nv, idle=lambda: 30.0), "devices-rig-standin-dark",
              {"cuda:0": "mining", "cuda:1": "mining", "cpu": "auto"}, theme="dark")
    return 0


if __name__ == "__main__":
    sys.exit(main())
