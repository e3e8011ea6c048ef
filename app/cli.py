"""`kminer`: the command line, the headless face of every capability.

Each command group lives in `app/commands/<name>.py` with `register(subparsers)`; heavy
imports happen inside the handlers so `kminer --help` stays fast. A handler returns an exit
code; a `UserError` becomes a one-line message and exit 1; bad arguments exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from app import __version__

log = logging.getLogger(__name__)

# Command modules under app.commands, in the order `--help` lists them.
COMMAND_MODULES: list[str] = [
    "render",
    "train",
    "infer",
    "devices",
    "bench",
    "job",
    "worker",
    "selftest",
    "wallet",
    "market",
    "order",
    "devnet",
    "earnings",
    "agent",
    "models",
    "preview_server",
    "settings",
]


class UserError(Exception):
    """An error the user caused and can fix; its message is shown as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse's convention)
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kminer", description="Knowledge Miner: sell rendering and training from your GPUs for NTK. "
                     "With no command it opens the desktop app.")
    parser.add_argument("--version", action="version", version=f"kminer {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="also log to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    gui = sub.add_parser("gui", help="open the desktop app (the default)")
    gui.set_defaults(handler=_run_gui)
    for name in COMMAND_MODULES:
        importlib.import_module(f"app.commands.{name}").register(sub)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from app.main import run_gui

    return run_gui()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from app.context import AppContext

    AppContext.setup_logging(verbose=args.verbose)
    handler = getattr(args, "handler", None) or _run_gui
    try:
        return int(handler(args) or 0)
    except UserError as e:
        print(f"kminer: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kminer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kminer ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # the machine said no (a path, a permission, a full disk): say what, in one line
        log.exception("command %s failed", getattr(args, "command", None))
        where = f": {e.filename}" if e.filename else ""
        print(f"kminer: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except Exception as e:  # the traceback goes to the log, the user gets one line
        log.exception("command %s failed", getattr(args, "command", None))
        from app.context import resolve_paths

        print(f"kminer: internal error: {type(e).__name__}: {e} (details in {resolve_paths().log_file})", file=sys.stderr)
        return 1


if __name__ == "__main__":  # `python -m app.cli`: run the imported module, so UserError is one class
    from app.cli import main as _main

    sys.exit(_main())
