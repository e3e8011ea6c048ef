"""`kminer preview-server`: internal; the scene editor's preview renderer (app.runtime.preview).

Reads JSON-line requests on stdin and answers each with a JSON header line and raw RGB bytes
on stdout until stdin closes. The job runtime is imported only in the handler.
"""

from __future__ import annotations

import argparse

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub) -> None:
    p = sub.add_parser("preview-server", help="(internal) the scene editor's preview renderer; requests on stdin")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from jobs.render.preview import serve  # deferred: loads numpy and trimesh

    return serve()
