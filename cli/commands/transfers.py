"""`kminer transfers`: what this home's peer-to-peer transport serves and fetches.

    kminer transfers [--json]                       once
    kminer transfers --watch [--interval S] [--count N]   refreshed until Ctrl-C (or N times)

Read-only: it reads the status file each transport node of this home writes (one per role,
`<data>/p2p/<role>/transport`: the agent's results, the buyer's orders, the model market), so
it shows what the GUI, `kminer agent`, `kminer order watch --p2p` or `kminer models serve` run.
JSON: {"nodes": [{"role": ..., "rows": [...], ...}]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from app.context import AppContext
from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("transfers", help="what the transport serves and fetches: to whom, progress, rates, peers",
                       description="What this home's peer-to-peer transport serves and fetches (results, inputs, "
                                   "specs, models): role, name, for whom, progress, rates, peers, and until when it "
                                   "is served. Read from the running node's status file.")
    p.add_argument("--json", action="store_true", help="print JSON (with --watch: one JSON document per line)")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=_interval, default=1.0, metavar="S", help="seconds between refreshes (--watch)")
    p.add_argument("--count", type=_count, default=0, metavar="N", help="stop after N refreshes (--watch; 0: never)")
    p.set_defaults(handler=cmd_transfers)


def _interval(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= v <= 3600:
        raise argparse.ArgumentTypeError("the interval is 0.1 to 3600 seconds")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 0:
        raise argparse.ArgumentTypeError("the count is 0 or more")
    return v


def cmd_transfers(args: argparse.Namespace) -> int:
    from app.transfers import read_transfers

    ctx = AppContext.open()

    def views():
        nodes = ctx.paths.transport_dirs() or [("node", ctx.paths.transport_dir)]
        return [(role, read_transfers(where)) for role, where in nodes]

    if not args.watch:
        vs = views()
        bad = next((v.problem for _, v in vs if v.problem and not v.absent), None)
        if bad and not args.json:
            raise UserError(bad)
        _show(args, vs)
        if bad:
            raise UserError(bad)
        return 0
    n = 0
    try:
        while True:
            vs = views()
            if not args.json and sys.stdout.isatty():
                print("\x1b[H\x1b[2J", end="")  # clear the terminal between frames
            _show(args, vs, compact=True)
            sys.stdout.flush()
            n += 1
            if args.count and n >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


_ROLE_TITLES = {"miner": "results this rig serves (orders)", "buyer": "your orders' inputs and results",
                "models": "models you sell or bought", "node": "transport"}


def _show(args: argparse.Namespace, views: list, *, compact: bool = False) -> None:
    """`views`: (role, TransfersView) per transport node of the home (one per role)."""
    from cli.shared import plain

    if args.json:
        nodes = []
        for role, view in views:
            doc = {"role": role, **plain(view)}
            doc["rows"] = [{**plain(r), "until_text": r.until_text} for r in view.rows]
            nodes.append(doc)
        out = {"nodes": nodes}
        print(json.dumps(out, separators=(",", ":")) if compact else json.dumps(out, indent=2))
        return
    if len(views) == 1:
        print(_text(views[0][1]))
        return
    print("\n\n".join(f"== {role}: {_ROLE_TITLES.get(role, role)} ==\n{_text(v)}" for role, v in views))


def _text(view) -> str:
    from app.transfers import progress_bar, rate_text, size_text

    if view.absent:
        return f"nothing served or fetched: the transport has not run in this home yet ({view.path})"
    if view.problem:
        return f"transport: {view.problem}"
    cap = lambda b: rate_text(b) if b else "no cap"  # noqa: E731
    as_of = time.strftime("%H:%M:%S", time.localtime(view.updated_ts))
    state = "running" if view.running else f"NOT RUNNING (last status at {as_of})"
    lines = [f"transport {state} · port {view.listen_port} · disk {size_text(view.used_bytes)} of "
             f"{size_text(view.quota_bytes)} · up {cap(view.upload_cap_bytes_s)} · down {cap(view.download_cap_bytes_s)}"]
    if not view.rows:
        lines.append("nothing served or fetched")
    for title, rows in (("Serving", view.serving), ("Fetching", view.fetching)):
        if not rows:
            continue
        lines.append(f"{title}:")
        for r in rows:
            who = r.reader or "anyone with the key"
            label = f"{r.kind} " if r.kind else ""
            lines.append(f"  {label}{r.name[:40]} ({size_text(r.size_bytes)}, {r.info_hash[:12]}) "
                         f"{'for' if r.role == 'serve' else 'from peers for'} {who}")
            until = f" · serve until {r.until_text}" if r.role == "serve" else ""
            err = f" · {r.error}" if r.error else ""
            bad = f" · {r.hash_failures} bad pieces refused" if r.hash_failures else ""
            lines.append(f"    {progress_bar(r.progress)} {100 * r.progress:5.1f}% {r.state} · up "
                         f"{rate_text(r.up_bytes_s)} · down {rate_text(r.down_bytes_s)} · {r.peers} peer"
                         f"{'' if r.peers == 1 else 's'}{until}{bad}{err}")
    if view.skipped:
        lines.append(f"({view.skipped} malformed or surplus entries in the status file were left out)")
    return "\n".join(lines)
