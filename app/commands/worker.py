"""`kminer worker --job DIR`: internal; the runner starts it inside the sandbox to run one job."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("worker", help="(internal) run one job from its folder; reports JSON lines on a pipe")
    from jobs.worker import register_args

    register_args(p)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.worker import main_from_args

    return main_from_args(args)
