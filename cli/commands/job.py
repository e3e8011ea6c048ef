"""`kminer job run|list|show|cancel`: run a job spec in the foreground, and look at the queue."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from app.context import AppContext
from app.errors import UserError
from common.textsafe import safe_line, safe_text

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub) -> None:
    p = sub.add_parser("job", help="run a job spec in the sandbox; list, show or cancel queued jobs")
    jsub = p.add_subparsers(dest="job_command", metavar="ACTION", required=True, parser_class=type(p))
    r = jsub.add_parser("run", help="run one job spec to completion in the foreground")
    r.add_argument("spec", metavar="SPEC.json", help="the job spec (inputs with relative URIs are read beside it)")
    r.add_argument("--device", default=None, help="cpu (default for CPU jobs) or cuda:N (N: nvidia-smi's index)")
    r.add_argument("--sandbox", choices=["strict", "basic"], default=None, help="override the sandbox setting")
    r.add_argument("--json", action="store_true", help="print only the outcome, as JSON")
    r.set_defaults(handler=_run)
    ls = jsub.add_parser("list", help="jobs in the queue")
    ls.add_argument("--state", action="append", choices=["queued", "running", "paused", "succeeded", "failed", "cancelled"],
                    help="only these states (repeatable)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=_list)
    sh = jsub.add_parser("show", help="one job with its attempts")
    sh.add_argument("id")
    sh.add_argument("--json", action="store_true", help="print JSON")
    sh.set_defaults(handler=_show)
    c = jsub.add_parser("cancel", help="cancel a queued or running job")
    c.add_argument("id")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=_cancel)


def _open():
    from app.runtime import open_queue

    ctx = AppContext.open()
    return ctx, open_queue(ctx)


def _run(args: argparse.Namespace) -> int:
    from app.runtime import parse_device, runtime_config
    from jobs.execute import Attempt, device_fits, execute_attempt
    from jobs.queue import QueueError
    from jobs.sandbox import SandboxUnavailable, level_report
    from jobs.spec import SpecError, load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as e:
        raise UserError(str(e)) from None
    ctx, queue = _open()
    try:
        cfg = runtime_config(ctx, sandbox=args.sandbox)
    except ValueError as e:
        raise UserError(str(e)) from None
    report = level_report(cfg.level)
    if not report.available:
        raise UserError(f"sandbox {cfg.level} is not available here: {report.detail}")
    dev_text = args.device or ("cuda:0" if spec.resources.device == "gpu" else "cpu")
    try:
        dev = parse_device(dev_text, cpu_slots=ctx.settings.jobs.cpu_slots)
    except ValueError as e:
        raise UserError(str(e)) from None
    if not device_fits(spec.resources, dev):
        raise UserError(f"job {spec.id} needs a {spec.resources.device} device; {dev.device_id} does not fit (--device)")
    from jobs.cgroups import remove_stale

    remove_stale()
    queue.recover(cfg.jobs_dir)
    try:
        queue.add(spec, spec_dir=Path(args.spec).resolve().parent)
    except QueueError as e:
        raise UserError(str(e)) from None

    def on_event(msg: dict) -> None:
        if args.json:
            return
        # the job wrote these: control characters never reach the terminal (OSC 52, screen clears)
        if msg["type"] == "progress":
            note = f" {safe_line(msg['message'])}" if msg.get("message") else ""
            print(f"[{spec.id}] {msg['fraction'] * 100:5.1f}%{note}", file=sys.stderr, flush=True)
        elif msg["type"] == "log":
            print(f"[{spec.id}] {safe_line(str(msg['level']))}: {safe_text(str(msg['message']))}", file=sys.stderr,
                  flush=True)

    if not args.json:
        print(f"[{spec.id}] running {spec.kind} on {dev.device_id} under the {cfg.level} sandbox", file=sys.stderr)
    handle = Attempt()
    box: dict = {}

    def target() -> None:
        try:
            box["outcome"] = execute_attempt(queue, cfg, spec.id, dev, on_event=on_event, handle=handle)
        except SandboxUnavailable as e:
            box["error"] = str(e)
        except BaseException as e:  # reported by the main thread
            box["exc"] = e

    t = threading.Thread(target=target, name=f"job-{spec.id}")
    t.start()
    try:
        while t.is_alive():
            t.join(0.2)
    except KeyboardInterrupt:
        handle.cancel("cancelled by request (Ctrl-C)")
        t.join()
    if "exc" in box:
        raise box["exc"]
    if "error" in box:
        raise UserError(box["error"])
    out = box.get("outcome")
    rec = queue.get(spec.id)
    doc = {"id": spec.id, "status": rec.state, "reason": rec.reason, "result": rec.result,
           "output_sha256": rec.output_sha, "sandbox": report.as_dict(), "device": dev.device_id}
    if out is not None:
        doc["timing"] = {"start_to_first_progress_s": out.start_to_first_progress_s, "run_s": round(out.run_s, 3),
                         "cancel_latency_s": out.cancel_latency_s}
    queue.close()
    if rec.state == "succeeded":
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(f"[{spec.id}] succeeded; outputs {rec.output_sha} in {ctx.paths.artifacts_dir}")
            print(json.dumps(rec.result, indent=2))
        return 0
    print(json.dumps({"id": spec.id, "status": rec.state, "reason": rec.reason} if not args.json else doc, indent=2))
    return 1


def _fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _list(args: argparse.Namespace) -> int:
    _, queue = _open()
    jobs = queue.list(args.state)
    if args.json:
        print(json.dumps([j.as_dict() for j in jobs], indent=2))
        return 0
    if not jobs:
        print("no jobs")
        return 0
    print(f"{'ID':32} {'KIND':14} {'STATE':10} {'TRIES':>5}  UPDATED              REASON")
    for j in jobs:
        print(f"{j.id[:32]:32} {safe_line(j.spec.kind)[:14]:14} {j.state:10} {j.attempts:5d}  "
              f"{_fmt_time(j.updated_at)}  {safe_line(j.reason or '')}")
    return 0


def _show(args: argparse.Namespace) -> int:
    from jobs.queue import QueueError

    _, queue = _open()
    try:
        j = queue.get(args.id)
    except QueueError as e:
        raise UserError(str(e)) from None
    doc = j.as_dict()
    doc["spec"] = json.loads(j.spec.model_dump_json())
    doc["attempts"] = [a.as_dict() for a in queue.attempts(j.id)]
    print(json.dumps(doc, indent=2))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from jobs.queue import QueueError

    _, queue = _open()
    try:
        state = queue.request_cancel(args.id)
    except QueueError as e:
        raise UserError(str(e)) from None
    if state in ("succeeded", "failed", "cancelled") and state != "cancelled":
        raise UserError(f"job {args.id} already ended ({state})")
    msg = {"id": args.id, "state": state,
           "note": "cancel requested; the runner stops it within a second" if state in ("running", "paused") else None}
    print(json.dumps(msg) if args.json else (msg["note"] or f"job {args.id} {state}"))
    return 0
