"""`kminer wallet mining-key`: the signing key of an unattended rig.

    kminer wallet mining-key create [--storage auto|keyring|file] [--gas ETH] [--stake NTK]
    kminer wallet mining-key show | rotate | revoke [--yes]

The mining key signs the miner's market actions so `kminer agent` and the app mine after a
reboot with the main wallet locked; the main address (the payout) is paid and owns the
stake. create / rotate / revoke move ETH and stake with the main wallet, so they ask for its
password (--password-file, $KMINER_PASSWORD, the keyring, the terminal). See app.account.mining_key.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.errors import UserError
from cli.shared import add_wallet_options, emit, open_wallet, user_errors

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(wsub: Any) -> None:
    m = wsub.add_parser("mining-key", help="the signing key of an unattended rig: create, show, rotate, revoke",
                        description="A separate key that signs market actions (claims, results) so the rig mines "
                                    "while the main wallet stays locked; earnings go to the main address.")
    msub = m.add_subparsers(dest="mining_key_command", metavar="ACTION", required=True)
    c = msub.add_parser("create", help="make the mining key and fund it from the main wallet")
    s = msub.add_parser("show", help="the key, where it is kept, its gas and stakes")
    r = msub.add_parser("rotate", help="a new key for new claims; the old one's ETH and stake go back")
    v = msub.add_parser("revoke", help="delete the key for good (its ETH and stake go back first)")
    for p, handler in ((c, cmd_create), (s, cmd_show), (r, cmd_rotate), (v, cmd_revoke)):
        add_wallet_options(p)
        p.set_defaults(handler=handler)
    for p in (c, r):
        p.add_argument("--storage", choices=("auto", "keyring", "file"),
                       help="where the key is kept: the OS keyring, or a 0600 file in the data folder "
                            "(auto: the keyring where there is one; default: the mining_key.storage setting)")
        p.add_argument("--gas", metavar="ETH", help="ETH for fees to send it (default 0.005; 10 on the local chain)")
        p.add_argument("--stake", metavar="NTK", default="0", help="NTK of stake to deposit for it (default 0)")
    for p in (r, v):
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _amounts(args) -> tuple[int | None, int]:
    from wallet.token import parse_units

    gas = user_errors(lambda: parse_units(args.gas)) if args.gas else None
    return gas, user_errors(lambda: parse_units(args.stake))


def _report(args, change) -> None:
    from dataclasses import asdict

    data = {"key": asdict(change.key) if change.key else None, "old": asdict(change.old) if change.old else None,
            "done": list(change.done), "left": list(change.left)}
    emit(args, data, "\n".join([*change.done, *(f"to do: {x}" for x in change.left)]))


def _confirm(args, what: str) -> None:
    if args.yes or args.json:
        return
    if not sys.stdin.isatty():
        raise UserError(f"{what}: add --yes to confirm (no terminal to ask on)")
    if input(f"{what}. Jobs the old key claimed and has not delivered lose its stake. Go on? [y/N] ").strip().lower() \
            not in ("y", "yes"):
        raise UserError("nothing was changed")


def cmd_create(args: argparse.Namespace) -> int:
    from app.account import create_mining_key

    gas, stake = _amounts(args)
    with open_wallet(args) as svc:
        storage = args.storage or svc.ctx.settings.mining_key.storage
        _report(args, user_errors(lambda: create_mining_key(svc, storage=storage, gas_wei=gas, stake_wei=stake)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from app.account import mining_key_status

    with open_wallet(args) as svc:
        st = user_errors(lambda: mining_key_status(svc))
        emit(args, st, "\n".join(st.lines()))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from app.account import rotate_mining_key

    gas, stake = _amounts(args)
    _confirm(args, "A new mining key replaces the current one")
    with open_wallet(args) as svc:
        storage = args.storage or svc.ctx.settings.mining_key.storage
        _report(args, user_errors(lambda: rotate_mining_key(svc, storage=storage, gas_wei=gas, stake_wei=stake)))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from app.account import revoke_mining_key

    _confirm(args, "The mining key is deleted for good; the rig then signs with the main wallet (unlocked)")
    with open_wallet(args) as svc:
        _report(args, user_errors(lambda: revoke_mining_key(svc)))
    return 0
