"""How long the GUI thread stalls while a render job and a training job run.

Builds the real main window with every page (as cli/gui.py does: devices, jobs, earnings,
scene editor with its preview child, orders, models, wallet unlocked on the local chain, the
market driver running), runs a render job (the demo shelf scene at 640x480) and a training job (the
shapes example) in sandboxed worker processes driven by a scheduler in this process, the way
the app's miner does, and measures the longest event-loop stall with ui.stall.StallProbe while
switching pages every second. Goal (issue 8): longest stall under 50 ms.

    .venv/bin/python bench/bench_gui_stall.py [--frames 40] [--epochs 6] [--sandbox strict] [--why MS]

It also prints the three longest gaps with the CPU time the GUI thread (and the whole
process) used in them: a gap full of GUI CPU is the GUI's own slow code; one with little is
waiting (a core, the X server, a lock or the GIL). `--why MS` prints the GUI thread's Python
stack whenever it is MS late (sampled from another thread, so a stall that holds the GIL in
C code is not caught).

Runs offscreen unless DISPLAY is set (use xvfb-run for a real X server). Uses a throwaway
KMINER_HOME. Prints one summary line and a JSON record.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--sandbox", default=None, help="strict, basic or none (default: the settings' level)")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--why", type=float, default=0.0, metavar="MS",
                    help="print where the GUI thread was (its Python stack) during each stall over MS ms")
    args = ap.parse_args()

    from bench.gui_app import whole_app
    from app.runtime import open_queue, parse_device, runtime_config
    from jobs.scheduler import Scheduler
    from jobs.spec import JobSpec, load_spec
    from ui.qt import QTimer
    from ui.stall import StallProbe

    app, ctx, window = whole_app("kminer-stall-")

    queue = open_queue(ctx)
    render = load_spec(ROOT / "resources" / "examples" / "render.json")
    render = JobSpec.model_validate(render.model_dump() | {"id": "stall-render",
                                                           "params": {"start": 0, "count": args.frames}})
    train = load_spec(ROOT / "resources" / "examples" / "train_job.json")
    train = JobSpec.model_validate(train.model_dump() | {
        "id": "stall-train", "params": train.params | {"epochs": args.epochs, "threads": 1}})
    queue.add(render, spec_dir=ROOT / "resources" / "examples")
    queue.add(train, spec_dir=ROOT / "resources" / "examples")
    cfg = runtime_config(ctx, sandbox=args.sandbox)
    cpu = parse_device("cpu", cpu_slots=2)
    sched = Scheduler(queue, cfg, lambda: [cpu])
    stop = threading.Event()
    loop = threading.Thread(target=sched.run_forever, args=(stop, 0.3), daemon=True)

    probe = _CpuProbe(StallProbe, tick_ms=10)
    caught: list[tuple[float, str, str]] = []
    if args.why > 0:
        watcher = threading.Thread(target=_watch, args=(probe, args.why, caught, window), daemon=True)
        watcher.start()
    pages = window.page_names()
    flips = {"n": 0}

    def flip() -> None:
        flips["n"] += 1
        window.show_page(pages[flips["n"] % len(pages)])

    flipper = QTimer()
    flipper.timeout.connect(flip)
    t0 = time.perf_counter()
    result: dict = {}

    def check() -> None:
        states = {j: queue.get(j).state for j in ("stall-render", "stall-train")}
        done = all(s in ("succeeded", "failed", "cancelled") for s in states.values())
        if done or time.perf_counter() - t0 > args.timeout:
            result.update(states=states, wall_s=round(time.perf_counter() - t0, 1))
            app.quit()

    checker = QTimer()
    checker.timeout.connect(check)
    QTimer.singleShot(1500, lambda: (probe.reset(), probe.start(), loop.start(), flipper.start(1000),
                                     checker.start(500)))
    app.exec()
    probe.stop()
    stop.set()
    loop.join(5)
    sched.shutdown()
    window.quit()
    rec = {"longest_stall_ms": round(probe.longest_ms, 1), "p99_ms": round(probe.percentile(99), 1),
           "over_50ms": probe.stalls_over(50), "ticks": len(probe.gaps_ms), "pages": pages,
           "platform": os.environ.get("QT_QPA_PLATFORM") or "xcb", "sandbox": cfg.level, **result}
    print(f"GUI stall while rendering {args.frames} frames and training {args.epochs} epochs: {probe.summary()}")
    print(json.dumps(rec))
    worst = sorted(probe.cpu_in_gap, reverse=True)[:3]
    print("longest gaps (wall ms, GUI thread CPU ms in it, process CPU ms in it): "
          + "; ".join(f"{w:.0f} / {c:.0f} / {pc:.0f}" for w, c, pc in worst))
    for age, page, stack in caught:
        print(f"\n--- GUI thread {age:.0f} ms late, on page {page}:\n{stack}")
    return 0


def _CpuProbe(base, **kw):
    """A StallProbe that also notes how much CPU the GUI thread (and the whole process) used
    in each gap: a gap spent computing is the GUI's own slow code; one with little CPU is
    waiting (for the GIL held by another thread, a lock, or a core)."""

    class Probe(base):
        def __init__(self):
            super().__init__(**kw)
            self.cpu_in_gap: list[tuple[float, float, float]] = []
            self._cpu = (time.thread_time(), time.process_time())

        def _tick(self) -> None:
            last = self._last
            super()._tick()
            cpu = (time.thread_time(), time.process_time())
            if last is not None and self.gaps_ms:
                wall = self.gaps_ms[-1] + self.tick_ms
                self.cpu_in_gap.append((wall, (cpu[0] - self._cpu[0]) * 1000, (cpu[1] - self._cpu[1]) * 1000))
            self._cpu = cpu

    return Probe()


def _watch(probe, over_ms: float, caught: list, window) -> None:
    """Samples the GUI thread's Python stack whenever its probe has not ticked for `over_ms`."""
    import traceback

    main_id = threading.main_thread().ident
    seen = None
    while True:
        time.sleep(0.002)
        last = probe._last
        if last is None:
            continue
        age = (time.perf_counter() - last) * 1000 - probe.tick_ms
        if age > over_ms and seen != last:
            seen = last
            frame = sys._current_frames().get(main_id)
            stack = "".join(traceback.format_stack(frame)[-12:]) if frame is not None else "(no Python frame)"
            caught.append((age, window.current_page(), stack))


if __name__ == "__main__":
    raise SystemExit(main())
