"""`kminer`: the command line, the headless face of every capability.

`main()` parses the arguments (cli.parser), sets up logging and runs the command's handler.
A handler returns an exit code; a `UserError` becomes a one-line message and exit 1; bad
arguments exit 2; any other failure is one line on stderr with its traceback in the log.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Sequence

from app.context import AppContext, on_settings_notice, resolve_paths
from app.errors import UserError
from cli.parser import COMMAND_MODULES, build_parser, run_gui

__all__ = ["COMMAND_MODULES", "UserError", "build_parser", "main"]

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    AppContext.setup_logging(verbose=args.verbose)
    on_settings_notice(lambda line: print(f"kminer: {line}", file=sys.stderr, flush=True))
    handler = getattr(args, "handler", None) or run_gui
    from wallet.errors import WalletError

    try:
        return int(handler(args) or 0)
    except (UserError, WalletError) as e:  # a wallet error is one line a user can act on, never "internal"
        log.debug("command %s: %s", getattr(args, "command", None), e, exc_info=True)
        print(f"kminer: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kminer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kminer ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:  # the machine said no (a path, a permission, a full disk): say what, in one line
        log.exception("command %s failed", getattr(args, "command", None))
        where = f": {e.filename}" if e.filename else ""
        print(f"kminer: error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except Exception as e:  # the traceback goes to the log, the user gets one line
        log.exception("command %s failed", getattr(args, "command", None))
        print(f"kminer: internal error: {type(e).__name__}: {e} (details in {resolve_paths().log_file})", file=sys.stderr)
        return 1
