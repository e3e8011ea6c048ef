"""`kminer bench`: benchmark devices (matmul GFLOP/s and render frames/s) and store the results.

    kminer bench [--device ID] [--quick] [--json]

Each device runs in a child process (torch and pyrender never load into this one); results
go to the app's benchmarks.json, keyed by device key, newest first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.context import AppContext
from app.errors import UserError
from cli.commands.devices import make_service

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark devices: matmul GFLOP/s and render frames/s",
                       description="Benchmark each device in a child process: fp32 matmul throughput (torch) and "
                                   "labelled 640x480 render frames/s (pyrender over EGL). Results are stored.")
    p.add_argument("--device", metavar="ID", help='"cpu", "cuda:N" or a GPU uuid (default: every device)')
    p.add_argument("--quick", action="store_true", help="a short run (about 2 s of measuring per device)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (a list, one per device)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="give up on a device after S seconds")
    # Internal: run the benchmark child in this process (what a frozen bundle starts; see gpu.bench).
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(handler=bench)


def _line(info: Any, r: dict[str, Any]) -> str:
    parts = [f"{info.id} ({info.name}):"]
    m, g = r.get("matmul", {}), r.get("render", {})
    parts.append(f"matmul {m['gflops']:.1f} GFLOP/s (fp32, n={m['n']}, median of {len(m.get('runs') or [1])})"
                 if "gflops" in m
                 else f"matmul failed: {m.get('error')}")
    parts.append(f"render {g['fps']:.1f} labelled frames/s ({g['width']}x{g['height']}, {g['renderer']})" if "fps" in g
                 else f"render failed: {g.get('error')}")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


def bench(args: argparse.Namespace) -> int:
    from gpu.bench import BenchError, BenchStore, run_benchmark, spread_warnings

    if args.child:
        from gpu import bench_child

        return bench_child.main(["--device", args.device or "cpu"] + (["--quick"] if args.quick else []))
    ctx = AppContext.open()
    svc = make_service(ctx)
    try:
        try:
            devices = [svc.device(args.device)] if args.device else list(svc.devices)
        except ValueError as e:
            raise UserError(str(e)) from None
    finally:
        svc.close()
    store = BenchStore(ctx.paths.bench_file)
    results, failures = [], []
    for info in devices:
        print(f"benchmarking {info.id} ({info.name})...", file=sys.stderr, flush=True)
        try:
            r = run_benchmark(info.ident, quick=args.quick, timeout_s=args.timeout)
        except BenchError as e:
            failures.append(str(e))
            print(f"kminer: {e}", file=sys.stderr)
            continue
        r.update(device_key=info.key, device_name=info.name)
        try:
            store.add(info.key, r)
        except (OSError, ValueError) as e:
            raise UserError(f"could not store the result in {store.path}: {e}") from None
        results.append(r)
        if not args.json:
            print(_line(info, r))
        for w in spread_warnings(r):
            print(f"kminer: warning: {info.id}: {w}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    elif results:
        print(f"stored in {store.path}")
    if failures:
        raise UserError(f"{len(failures)} of {len(devices)} benchmarks failed: {failures[0]}")
    return 0
