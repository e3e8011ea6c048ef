"""The worker: runs one job inside the sandbox (`python -m jobs.worker --job DIR --report-fd N`;
in the frozen bundle `kminer worker ...`, which the bundle's entry sends straight here).

It imports only jobs/ and common/ (never the app), so starting it reads and writes nothing
of the app's: no settings, cache or log files appear in the job folder.

It reads `DIR/spec.json`, finds the inputs under `DIR/in/<name>` (already fetched and
hash-checked by the runner), lets the engine write under `DIR/out/`, and reports on the
pipe `N` as JSON lines only (one object per line, UTF-8):
    {"type": "hello", "pid": ..., "t": ...}
    {"type": "progress", "fraction": 0.25, "message": "..."}
    {"type": "log", "level": "info", "message": "..."}
    {"type": "result", "result": {...}}      or      {"type": "error", "reason": "..."}
stdout and stderr are free text for the log file; the runner never parses them. SIGTERM
asks the engine to stop (`ctx.cancelled()`); the runner kills the job a moment later.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from jobs.engine import ENGINES, EngineError, JobContext, resolve_engine
from jobs.spec import SpecError, load_spec

MAX_LINE_BYTES = 64 * 1024   # the runner rejects longer lines; keep ours under it


class Reporter:
    """Writes JSON lines to the report pipe; thread-safe; a closed pipe ends the worker."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = threading.Lock()

    def emit(self, msg: dict[str, Any]) -> None:
        data = json.dumps(msg, separators=(",", ":"), default=str).encode("utf-8")
        if len(data) >= MAX_LINE_BYTES:
            if msg.get("type") == "result":
                data = json.dumps({"type": "error", "reason": f"result summary too large ({len(data)} bytes; "
                                   f"put data in the output folder)"}).encode()
            else:
                data = json.dumps({"type": msg.get("type", "log"), "message": "(message too long, dropped)"}).encode()
        data += b"\n"
        with self._lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view)
                except BrokenPipeError:
                    os._exit(3)   # the runner is gone: nobody to report to
                view = view[n:]


def _device() -> str:
    return os.environ.get("KMINER_DEVICE") or ("cuda:0" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")


def run_worker(job_dir: Path, report_fd: int) -> int:
    rep = Reporter(report_fd)
    rep.emit({"type": "hello", "pid": os.getpid(), "t": time.time()})
    cancel = threading.Event()

    def _on_term(signum, frame):  # cooperative stop; the runner's SIGKILL follows
        cancel.set()

    signal.signal(signal.SIGTERM, _on_term)
    if hasattr(signal, "SIGBREAK"):   # Windows: the runner's CTRL_BREAK_EVENT
        signal.signal(signal.SIGBREAK, _on_term)
    try:
        spec = load_spec(job_dir / "spec.json")
        if spec.kind not in ENGINES:
            raise EngineError(f"no engine for kind {spec.kind!r} (known: {', '.join(sorted(ENGINES))})")
        inputs: dict[str, Path] = {}
        for name in spec.inputs:
            p = job_dir / "in" / name
            if not p.exists():
                raise EngineError(f"input {name!r} is missing from the job folder")
            inputs[name] = p
        out_dir, work_dir = job_dir / "out", job_dir / "work"
        out_dir.mkdir(exist_ok=True)
        work_dir.mkdir(exist_ok=True)
        ctx = JobContext(job_id=spec.id, kind=spec.kind, params=dict(spec.params), inputs=inputs, out_dir=out_dir,
                         work_dir=work_dir, device=_device(), seed=spec.seed, _emit=rep.emit, _cancel=cancel)
        import random

        random.seed(spec.seed)
        engine = resolve_engine(spec.kind)
        result = engine(ctx)
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise EngineError(f"engine returned {type(result).__name__}, not a dict")
        json.dumps(result)  # must be JSON-serialisable
    except (EngineError, SpecError) as e:
        rep.emit({"type": "error", "reason": str(e)[:2000]})
        return 1
    except BaseException as e:  # noqa: BLE001 - any failure of buyer/engine code fails the job, with a reason
        traceback.print_exc(file=sys.stderr)
        if isinstance(e, SystemExit):
            reason = f"job called exit({e.code})"
        elif isinstance(e, KeyboardInterrupt):
            reason = "interrupted"
        else:
            reason = f"{type(e).__name__}: {e}"
        rep.emit({"type": "error", "reason": reason[:2000]})
        return 1
    rep.emit({"type": "result", "result": result})
    return 0


def register_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--job", required=True, type=Path, metavar="DIR", help="the job folder (spec.json, in/, out/)")
    p.add_argument("--report-fd", type=int, default=None, metavar="N",
                   help="pipe for JSON-line reports (default: $KMINER_REPORT_FD)")
    p.add_argument("--max-tasks", type=int, default=None, metavar="N",
                   help="RLIMIT_NPROC for the job (strict: counted in the job's own user namespace)")


def main_from_args(args: argparse.Namespace) -> int:
    fd = args.report_fd if args.report_fd is not None else int(os.environ.get("KMINER_REPORT_FD", "-1"))
    if os.name == "nt" and os.environ.get("KMINER_REPORT_HANDLE"):   # Windows: an inherited pipe handle
        import msvcrt

        fd = msvcrt.open_osfhandle(int(os.environ["KMINER_REPORT_HANDLE"]), os.O_WRONLY)
    if fd < 0:
        print("kminer worker: no report pipe (--report-fd)", file=sys.stderr)
        return 2
    try:
        os.fstat(fd)
    except OSError:
        print(f"kminer worker: report fd {fd} is not open", file=sys.stderr)
        return 2
    tasks = getattr(args, "max_tasks", None)
    if tasks is not None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        cap = tasks if hard == resource.RLIM_INFINITY else min(tasks, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))   # before any job code, which cannot raise it
    return run_worker(args.job, fd)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kminer worker")
    register_args(p)
    return main_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
