"""The `kminer` argument parser: the command groups in `cli/commands/`, in `--help` order.

Each command module has `register(subparsers)` and imports its heavy libraries inside its
handlers, so building the parser (every command's start-up, the GUI's
included) stays lean. Bad arguments: one line and exit 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib

from app import __version__

# Command modules under cli.commands, in the order `--help` lists them.
COMMAND_MODULES: list[str] = [
    "render",
    "train",
    "infer",
    "devices",
    "bench",
    "photoreal",
    "job",
    "selftest",
    "wallet",
    "market",
    "order",
    "transfers",
    "devnet",
    "earnings",
    "agent",
    "models",
    "preview_server",
    "settings",
]


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
    gui.set_defaults(handler=run_gui)
    for name in COMMAND_MODULES:  # by name: the list above is the one place that orders them
        importlib.import_module(f"cli.commands.{name}").register(sub)
    return parser


def run_gui(args: argparse.Namespace | None = None) -> int:
    """The desktop app (the default command)."""
    from cli.gui import run_gui as _run  # deferred: Qt loads only when the GUI opens

    return _run()
