"""`kminer agent`: the headless miner. Watches the job market of the wallet's network, claims
jobs its devices can run at or above their price floor, runs them, submits the results and
collects the payments (see app.miner_service). Prints one status line per device each pass;
Ctrl-C stops cleanly (running jobs are stopped and requeued; the next start resumes them).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from typing import Any

from app.cli import UserError


def register(sub: Any) -> None:
    from app.commands.wallet import add_common

    p = sub.add_parser("agent", help="run the miner: claim market jobs, run them, submit, get paid",
                       description="The headless miner for rigs: watches the job market and works for NTK.")
    add_common(p)
    p.add_argument("--once", action="store_true", help="one pass: claim, run the claimed jobs to the end, submit, report; then exit")
    p.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between passes (default 2)")
    p.add_argument("--sandbox", help="override the sandbox level for these jobs (strict, basic, none)")
    p.set_defaults(handler=cmd_agent)


def _fmt(line: dict) -> str:
    job = f"job {line['job']}" if line["job"] is not None else "no job"
    prog = f" {line['progress'] * 100:.0f}%" if line["progress"] is not None else ""
    temp = f" {line['temp_c']:.0f}°C" if line["temp_c"] is not None else ""
    state = "throttled" if line["throttled"] else ("mining" if line["active"] else line["mode"])
    return f"{line['device']:<8} {state:<9} {job}{prog}{temp}  today {line['earned_today_wei'] / 10**18:.4f} NTK"


def cmd_agent(args: argparse.Namespace) -> int:
    from app.commands.wallet import _user, open_service
    from app.devices_service import DeviceService
    from app.ledger import Ledger
    from app.miner_service import MinerService

    if args.interval <= 0:
        raise UserError("--interval must be positive")
    with open_service(args) as wallet:
        ctx = wallet.ctx
        market = _user(wallet.market)
        me = _user(wallet.signer)
        devices = DeviceService(ctx)
        ledger = Ledger(ctx.paths.ledger_db)
        svc = MinerService(ctx, market, me, devices, ledger, sandbox=args.sandbox)
        stop = threading.Event()
        old = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            while True:
                try:
                    svc.step()
                    if args.once:  # finish what this pass started (Ctrl-C still stops), then submit it
                        while not stop.is_set() and not svc.scheduler.wait_idle(0.5):
                            pass
                        if not stop.is_set():
                            svc.step(claim=False)
                except Exception as e:  # RPC down, store busy: report and retry next pass
                    print(f"agent: pass failed: {e}", flush=True)
                lines = svc.device_lines()
                if args.json:
                    print(json.dumps({"time": time.time(), "devices": lines,
                                      "jobs": [r.__dict__ for r in svc.rows(active_only=True)]}), flush=True)
                else:
                    for line in lines:
                        print(_fmt(line), flush=True)
                if args.once or stop.wait(args.interval):
                    break
        finally:
            signal.signal(signal.SIGINT, old)
            svc.close()
            ledger.close()
            devices.close()
    return 0
