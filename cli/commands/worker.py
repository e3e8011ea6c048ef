"""`kminer worker --job DIR`: internal; the runner starts it inside the sandbox to run one job.

The arguments are declared here (not imported from jobs.worker) so building the CLI parser
never imports the job runtime: every command's start-up, the GUI's included, stays lean.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub) -> None:
    p = sub.add_parser("worker", help="(internal) run one job from its folder; reports JSON lines on a pipe")
    p.add_argument("--job", required=True, type=Path, metavar="DIR", help="the job folder (spec.json, in/, out/)")
    p.add_argument("--report-fd", type=int, default=None, metavar="N",
                   help="pipe for JSON-line reports (default: $KMINER_REPORT_FD)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.worker import main_from_args

    return main_from_args(args)
