"""`kminer photoreal`: the optional photoreal render engine (Blender's Cycles, GPL-3.0).

    kminer photoreal [status] [--json]     is it installed? (exit 0 yes, 3 no; one line)
    kminer photoreal install [--wheel FILE]  download (or take) the pinned bpy wheel, check its
                                             sha256, put it next to the bundle
    kminer photoreal remove

The bundles ship without it (jobs/render/photoreal_addon.py); without it the miner offers
only the fast render engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.errors import UserError

NOT_INSTALLED_EXIT = 3


def register(sub: Any) -> None:
    p = sub.add_parser("photoreal", help="the optional photoreal render engine: status, install, remove",
                       description="The photoreal render engine (Blender's Cycles through the bpy module, GPL-3.0) "
                                   "is an optional component: the bundles do not include it.")
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.set_defaults(handler=show_status)
    acts = p.add_subparsers(dest="photoreal_action", metavar="ACTION")
    st = acts.add_parser("status", help="say whether it is installed (exit 0) or not (exit 3)")
    st.add_argument("--json", action="store_true", help="as JSON")
    st.set_defaults(handler=show_status)
    ins = acts.add_parser("install", help="download the pinned bpy wheel (or take --wheel FILE), check it, install it",
                          description="Downloads Blender's bpy wheel from PyPI (or takes --wheel FILE), checks its "
                                      "sha256 against the pinned one and puts it in the bundle's photoreal/ folder.")
    ins.add_argument("--wheel", type=Path, metavar="FILE", help="a bpy wheel already downloaded")
    ins.set_defaults(handler=install)
    rm = acts.add_parser("remove", help="take the photoreal engine out again")
    rm.set_defaults(handler=remove)


def show_status(args: argparse.Namespace) -> int:
    from jobs.render.photoreal_addon import addon_root, status

    ok, line = status()
    if getattr(args, "json", False):
        root = addon_root()
        print(json.dumps({"installed": ok, "line": line, "addon_folder": str(root) if root else None}))
    else:
        print(line)
    return 0 if ok else NOT_INSTALLED_EXIT


def install(args: argparse.Namespace) -> int:
    from jobs.render.photoreal_addon import BPY_MIB, AddonError, addon_root
    from jobs.render.photoreal_addon import install as do_install

    root = addon_root()
    if args.wheel is None and root is not None:
        print(f"downloading Blender's bpy wheel ({BPY_MIB} MiB, GPL-3.0) from PyPI ...", file=sys.stderr, flush=True)
    last = [-1]

    def progress(done: int, total: int) -> None:
        pct = int(done * 100 / total) if total else -1
        if sys.stderr.isatty() and pct != last[0] and pct % 5 == 0:
            last[0] = pct
            print(f"\r  {pct}%", end="", file=sys.stderr, flush=True)

    try:
        sp = do_install(args.wheel, progress=progress)
    except AddonError as e:
        raise UserError(str(e)) from None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"photoreal engine installed in {sp.parent}")
    return 0


def remove(args: argparse.Namespace) -> int:
    from jobs.render.photoreal_addon import AddonError
    from jobs.render.photoreal_addon import remove as do_remove

    try:
        gone = do_remove()
    except AddonError as e:
        raise UserError(str(e)) from None
    print("photoreal engine removed" if gone else "photoreal engine was not installed")
    return 0
