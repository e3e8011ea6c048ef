"""What the command modules share: the wallet options and a WalletService opened from them,
wallet errors as one UserError line, and output as text or --json.

Imported when the parser is built (every command's start): the wallet's modules load inside
the functions (see cli/commands/__init__.py).
"""

from __future__ import annotations

import argparse
import enum
import getpass
import json
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.errors import UserError


def add_wallet_options(p: argparse.ArgumentParser, *, account: bool = True) -> None:
    """The network, account, password-file and --json options of every command that uses the wallet."""
    p.add_argument("--network", metavar="NAME", help="local (embedded chain), devnet, sepolia, holesky, mainnet "
                                                     "(default: the wallet setting)")
    p.add_argument("--rpc-url", metavar="URL", help="JSON-RPC endpoint for devnet and public networks")
    if account:
        p.add_argument("--account", metavar="ADDRESS", help="which keystore account to use (default: the wallet setting)")
    p.add_argument("--password-file", metavar="FILE", type=Path, help="read the wallet password from the first line of FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def ask_password(address: str) -> str | None:
    """The password asked on the terminal (None without one)."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"Password for {address}: ")


def password_providers(args: argparse.Namespace, ctx) -> list:
    """Where the wallet password comes from, in order: --password-file, $KMINER_PASSWORD, the OS keyring
    (when "remember password" is on), the terminal."""
    from wallet.keystore import password_from_env, password_from_file, password_from_keyring

    provs = []
    if getattr(args, "password_file", None):
        provs.append(password_from_file(args.password_file))
    provs += [password_from_env(), password_from_keyring(ctx.settings.wallet.remember_password), ask_password]
    return provs


def new_password(args: argparse.Namespace) -> str:
    """The password for a new keystore: --password-file, $KMINER_PASSWORD, or asked twice."""
    from wallet.keystore import password_from_file

    if getattr(args, "password_file", None):
        return user_errors(lambda: password_from_file(args.password_file)(""))
    if os.environ.get("KMINER_PASSWORD"):
        return os.environ["KMINER_PASSWORD"]
    if not sys.stdin.isatty():
        raise UserError("no password: use --password-file FILE or set KMINER_PASSWORD (no terminal to ask on)")
    pw = getpass.getpass("New wallet password: ")
    if pw != getpass.getpass("Repeat it: "):
        raise UserError("the passwords differ; nothing was created")
    return pw


def user_errors(fn):
    """Run fn, turning wallet errors (already one-line, secret-free) into UserError."""
    from wallet.errors import WalletError

    try:
        return fn()
    except WalletError as e:
        raise UserError(str(e)) from None
    except ValueError as e:
        raise UserError(str(e)) from None


def open_wallet(args: argparse.Namespace):
    """A WalletService on the network and account the options name (errors as one UserError line)."""
    from app.account import WalletService

    ctx = AppContext.open()
    return user_errors(lambda: WalletService(ctx, network=getattr(args, "network", None), rpc_url=getattr(args, "rpc_url", None),
                                       account=getattr(args, "account", None), passwords=password_providers(args, ctx)))


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print `data` as JSON with --json, else `text`."""
    if args.json:
        print(json.dumps(plain(data), indent=2))
    else:
        print(text)


def plain(x: Any) -> Any:
    """`x` as plain JSON data: dataclasses as dicts, amounts (`*_wei`) as decimal strings, enums by name."""
    if is_dataclass(x):
        return plain(asdict(x))
    if isinstance(x, dict):
        return {k: (str(v) if k.endswith("_wei") and isinstance(v, int) else plain(v)) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, enum.Enum):
        return x.name.lower()
    if isinstance(x, Path):
        return str(x)
    return x
