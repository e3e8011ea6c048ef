"""Benchmark: what the sandbox costs, and how fast a cancel takes effect.

    .venv/bin/python bench/bench_sandbox.py [--runs 10] [--json]

- start -> first progress line: from the runner's Popen to the worker's first
  `progress` JSON line, for `basic`, `strict` without its seccomp filter (`strict-nofilter`:
  the same launch with `--seccomp FD` taken out) and `strict`, runs alternated so a busy
  machine affects all alike. Median and min in milliseconds; the filter must keep strict
  within +100 ms of basic.
- cancel latency: from `cancel()` to every process of the job gone, for a job that stops
  on SIGTERM (the `sleep` engine) and one that ignores it (spinning buyer code, killed after
  the grace period).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jobs.runner  # noqa: E402
from jobs.limits import Limits  # noqa: E402
from jobs.runner import TERM_GRACE_S, JobRun  # noqa: E402
from jobs.sandbox import strict_problem  # noqa: E402

SPIN = "def run(ctx):\n    ctx.progress(0.0)\n    while True:\n        pass\n"


def _job_dir(root: Path, name: str, spec: dict, module: str | None = None) -> Path:
    d = root / name
    (d / "in").mkdir(parents=True)
    (d / "spec.json").write_text(json.dumps(spec))
    if module is not None:
        (d / "in" / "module").write_text(module)
    return d


def _without_filter(build):
    """build_launch with `--seccomp FD` taken out (for measuring what the filter costs only)."""
    def wrapped(*a, **kw):
        launch = build(*a, **kw)
        i = launch.argv.index("--seccomp")
        del launch.argv[i:i + 2]
        launch.close_fds()
        return launch
    return wrapped


def first_progress(root: Path, variant: str, i: int) -> float:
    level = "basic" if variant == "basic" else "strict"
    d = _job_dir(root, f"fp-{variant}-{i}", {"id": f"fp{i}", "kind": "sleep", "params": {"seconds": 0, "steps": 1}})
    build = jobs.runner.build_launch
    if variant == "strict-nofilter":
        jobs.runner.build_launch = _without_filter(build)
    try:
        out = JobRun(d, f"fp{i}", Limits(wall_s=30), level=level).run()
    finally:
        jobs.runner.build_launch = build
    assert out.status == "succeeded", out.reason
    return out.start_to_first_progress_s * 1000


def cancel_latency(root: Path, level: str, i: int, cooperative: bool) -> float:
    if cooperative:
        spec = {"id": f"c{i}", "kind": "sleep", "params": {"seconds": 60, "steps": 6000}}
        d = _job_dir(root, f"c-{level}-{i}-coop", spec)
    else:
        sha = "0" * 64
        spec = {"id": f"c{i}", "kind": "python", "inputs": {"module": {"sha256": sha}}}
        d = _job_dir(root, f"c-{level}-{i}-spin", spec, SPIN)
    got = threading.Event()
    run = JobRun(d, f"c{i}", Limits(wall_s=60), level=level,
                 on_event=lambda m: got.set() if m["type"] == "progress" else None)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("o", run.run()))
    t.start()
    got.wait(10)
    time.sleep(0.2)
    t0 = time.monotonic()
    run.cancel()
    t.join()
    ms = (time.monotonic() - t0) * 1000
    assert box["o"].status == "cancelled"
    return ms


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    strict = strict_problem() is None
    variants = ["basic"] + (["strict-nofilter", "strict"] if strict else [])
    levels = ["basic"] + (["strict"] if strict else [])
    res: dict = {"first_progress_ms": {v: [] for v in variants}, "cancel_ms": {}}
    with tempfile.TemporaryDirectory(prefix="kminer-bench-") as tmp:
        root = Path(tmp)
        for i in range(args.runs):
            for v in (variants if i % 2 == 0 else variants[::-1]):
                res["first_progress_ms"][v].append(first_progress(root, v, i))
        for lv in levels:
            for coop in (True, False):
                key = f"{lv}/{'on SIGTERM' if coop else 'ignores SIGTERM'}"
                res["cancel_ms"][key] = [cancel_latency(root, lv, i, coop) for i in range(3)]
    summary = {
        "first_progress_ms": {lv: {"median": round(statistics.median(v), 1), "min": round(min(v), 1)}
                              for lv, v in res["first_progress_ms"].items()},
        "cancel_ms": {k: {"median": round(statistics.median(v), 1), "max": round(max(v), 1)}
                      for k, v in res["cancel_ms"].items()},
        "term_grace_s": TERM_GRACE_S,
        "runs": args.runs,
    }
    if "strict" in summary["first_progress_ms"]:
        fp = summary["first_progress_ms"]
        summary["sandbox_overhead_ms_median"] = round(fp["strict"]["median"] - fp["basic"]["median"], 1)
        summary["filter_cost_ms_median"] = round(fp["strict"]["median"] - fp["strict-nofilter"]["median"], 1)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for lv, v in summary["first_progress_ms"].items():
            print(f"start -> first progress, {lv:15}: median {v['median']:7.1f} ms   min {v['min']:7.1f} ms")
        if "sandbox_overhead_ms_median" in summary:
            print(f"strict over basic (median): {summary['sandbox_overhead_ms_median']:.1f} ms "
                  f"(the seccomp filter: {summary['filter_cost_ms_median']:.1f} ms)")
        for k, v in summary["cancel_ms"].items():
            print(f"cancel latency, {k:26}: median {v['median']:7.1f} ms   max {v['max']:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
