"""`kminer wallet`: keys, balances, sending, history.

    kminer wallet create|import|address|balance|send|history|export|faucet [--network NAME] [--json]

Passwords come from --password-file, then $KMINER_PASSWORD, then the OS keyring (only if
"remember password" is on), then an interactive prompt. Secrets are read from files or the
prompt, never from the command line (other users could see them in `ps`).
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
from app.amounts import eth_text, ntk_text
from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def add_common(p: argparse.ArgumentParser, *, account: bool = True) -> None:
    p.add_argument("--network", metavar="NAME", help="local (embedded chain), devnet, sepolia, holesky, mainnet "
                                                     "(default: the wallet setting)")
    p.add_argument("--rpc-url", metavar="URL", help="JSON-RPC endpoint for devnet and public networks")
    if account:
        p.add_argument("--account", metavar="ADDRESS", help="which keystore account to use (default: the wallet setting)")
    p.add_argument("--password-file", metavar="FILE", type=Path, help="read the wallet password from the first line of FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def register(sub: Any) -> None:
    p = sub.add_parser("wallet", help="wallet: keys, NTK and ETH balances, send, history",
                       description="Local keys (encrypted keystore files), balances, sending and history.")
    wsub = p.add_subparsers(dest="wallet_command", metavar="ACTION", required=True)

    c = wsub.add_parser("create", help="create a new account (encrypted with a password)")
    add_common(c, account=False)
    c.set_defaults(handler=cmd_create)

    i = wsub.add_parser("import", help="import a private key, a keystore V3 file or a BIP-39 mnemonic")
    add_common(i, account=False)
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--private-key-file", metavar="FILE", type=Path, help="file holding the hex private key")
    src.add_argument("--keystore", metavar="FILE", type=Path, help="a keystore V3 JSON file (opened with its password)")
    src.add_argument("--mnemonic-file", metavar="FILE", type=Path, help="file holding the BIP-39 words")
    i.add_argument("--index", type=int, default=0, help="account index on the mnemonic's path m/44'/60'/0'/0/N")
    i.add_argument("--keystore-password-file", metavar="FILE", type=Path,
                   help="password of the imported keystore, if not the same as the new one")
    i.set_defaults(handler=cmd_import)

    a = wsub.add_parser("address", help="list the accounts (the current one marked)")
    add_common(a, account=False)
    a.set_defaults(handler=cmd_address)

    b = wsub.add_parser("balance", help="ETH and NTK balance")
    add_common(b)
    b.add_argument("address", nargs="?", help="any address (default: your account)")
    b.set_defaults(handler=cmd_balance)

    s = wsub.add_parser("send", help="send NTK (or ETH)")
    add_common(s)
    s.add_argument("--to", required=True, metavar="ADDRESS")
    s.add_argument("--amount", required=True, help="amount in NTK (or ETH), e.g. 12.5")
    s.add_argument("--asset", choices=["NTK", "ETH"], default="NTK")
    s.set_defaults(handler=cmd_send)

    h = wsub.add_parser("history", help="NTK transfers and market events of your account")
    add_common(h)
    h.add_argument("--limit", type=int, default=50)
    h.set_defaults(handler=cmd_history)

    e = wsub.add_parser("export", help="write your account's keystore file to FILE")
    add_common(e)
    e.add_argument("dest", type=Path, metavar="FILE")
    e.set_defaults(handler=cmd_export)

    f = wsub.add_parser("faucet", help="test networks: mint NTK (and send ETH for gas) to an address; deployer only")
    add_common(f)
    f.add_argument("--to", required=True, metavar="ADDRESS")
    f.add_argument("--ntk", default="1000", help="NTK to mint (default 1000)")
    f.add_argument("--eth", default="1", help="ETH to send for gas (default 1)")
    f.set_defaults(handler=cmd_faucet)


# --- shared helpers (market.py uses them too) -----------------------------------------------

def _prompt(address: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"Password for {address}: ")


def password_providers(args: argparse.Namespace, ctx) -> list:
    from wallet.keystore import password_from_env, password_from_file, password_from_keyring

    provs = []
    if getattr(args, "password_file", None):
        provs.append(password_from_file(args.password_file))
    provs += [password_from_env(), password_from_keyring(ctx.settings.wallet.remember_password), _prompt]
    return provs


def new_password(args: argparse.Namespace) -> str:
    """The password for a new keystore: --password-file, $KMINER_PASSWORD, or asked twice."""
    from wallet.keystore import password_from_file

    if getattr(args, "password_file", None):
        return _user(lambda: password_from_file(args.password_file)(""))
    if os.environ.get("KMINER_PASSWORD"):
        return os.environ["KMINER_PASSWORD"]
    if not sys.stdin.isatty():
        raise UserError("no password: use --password-file FILE or set KMINER_PASSWORD (no terminal to ask on)")
    pw = getpass.getpass("New wallet password: ")
    if pw != getpass.getpass("Repeat it: "):
        raise UserError("the passwords differ; nothing was created")
    return pw


def _user(fn):
    """Run fn, turning wallet errors (already one-line, secret-free) into UserError."""
    from wallet.errors import WalletError

    try:
        return fn()
    except WalletError as e:
        raise UserError(str(e)) from None
    except ValueError as e:
        raise UserError(str(e)) from None


def open_service(args: argparse.Namespace):
    from app.account import WalletService

    ctx = AppContext.open()
    return _user(lambda: WalletService(ctx, network=getattr(args, "network", None), rpc_url=getattr(args, "rpc_url", None),
                                       account=getattr(args, "account", None), passwords=password_providers(args, ctx)))


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        print(json.dumps(_plain(data), indent=2))
    else:
        print(text)


def _plain(x: Any) -> Any:
    if is_dataclass(x):
        return _plain(asdict(x))
    if isinstance(x, dict):
        return {k: (str(v) if k.endswith("_wei") and isinstance(v, int) else _plain(v)) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, enum.Enum):
        return x.name.lower()
    if isinstance(x, Path):
        return str(x)
    return x


def _remember(ctx, address: str, password: str) -> None:
    from wallet.keystore import KeyringPasswords

    if ctx.settings.wallet.remember_password and not KeyringPasswords().set(address, password):
        print("note: no OS keyring is available; you will be asked for the password", file=sys.stderr)


# --- handlers --------------------------------------------------------------------------------

def _adopt(svc, address: str) -> None:
    """Make `address` the wallet's account if none is set; bootstrap a new local chain for it."""
    ctx = svc.ctx
    if not ctx.settings.wallet.account:
        ctx.settings.wallet.account = address
        ctx.save_settings()
    if svc.network.embedded and not (ctx.paths.chain_dir / "chain.sqlite").exists():
        svc._account = address
        _user(svc.deployment)


def cmd_create(args: argparse.Namespace) -> int:
    password = new_password(args)
    with open_service(args) as svc:
        address = _user(lambda: svc.keystore.create(password))
        svc.passwords.insert(0, lambda a: password)
        _remember(svc.ctx, address, password)
        _adopt(svc, address)
        emit(args, {"address": address, "keystore": str(svc.keystore.path_for(address))}, address)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from wallet.keystore import password_from_file

    password = new_password(args)
    with open_service(args) as svc:
        ks = svc.keystore
        if args.private_key_file:
            key = _read_secret(args.private_key_file)
            address = _user(lambda: ks.import_private_key(key, password))
        elif args.mnemonic_file:
            words = _read_secret(args.mnemonic_file)
            address = _user(lambda: ks.import_mnemonic(words, password, index=args.index))
        else:
            old = _user(lambda: password_from_file(args.keystore_password_file)("")) if args.keystore_password_file else password
            address = _user(lambda: ks.import_keystore(args.keystore, old, new_password=password))
        svc.passwords.insert(0, lambda a: password)
        _remember(svc.ctx, address, password)
        _adopt(svc, address)
        emit(args, {"address": address}, address)
    return 0


def _read_secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def cmd_address(args: argparse.Namespace) -> int:
    with open_service(args) as svc:
        keys = svc.keystore.list()
        current = svc.ctx.settings.wallet.account
        rows = [{"address": k.address, "current": bool(current) and k.address.lower() == current.lower()} for k in keys]
        emit(args, rows, "\n".join(f"{'*' if r['current'] else ' '} {r['address']}" for r in rows) or "no accounts")
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    with open_service(args) as svc:
        b = _user(lambda: svc.balances(args.address))
        ntk = "unknown (no NTK contract on this network)" if b.ntk_wei is None else ntk_text(b.ntk_wei)
        emit(args, b, f"{b.address} on {b.network} (chain {b.chain_id}): {ntk}, {eth_text(b.eth_wei)}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    amount = _user(lambda: parse_units(args.amount))
    with open_service(args) as svc:
        me = _user(svc.signer)
        if args.asset == "ETH":
            res = _user(lambda: svc.chain.transact(me, to=svc.chain.w3.to_checksum_address(args.to), value_wei=amount,
                                                   gas=21_000, what=f"sending {args.amount} ETH"))
        else:
            res = _user(lambda: svc.token().transfer(me, args.to, amount))
        emit(args, {"tx_hash": res.tx_hash, "block": res.block_number, "amount_wei": amount, "asset": args.asset},
             f"sent {args.amount} {args.asset} to {args.to} (tx {res.tx_hash}, block {res.block_number})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with open_service(args) as svc:
        address = _user(lambda: svc.address)
        idx = _user(svc.indexer)
        try:
            _user(idx.sync)
            events = idx.history(address, limit=args.limit)
        finally:
            idx.close()
        lines = []
        for e in events:
            amt = f" {ntk_text(e.amount_wei)}" if e.amount_wei is not None else ""
            job = f" job {e.job_id}" if e.job_id is not None else ""
            peer = e.to_addr if e.from_addr == address else e.from_addr
            lines.append(f"block {e.block}: {e.name}{job}{amt}" + (f" ({peer})" if peer and peer != address else ""))
        emit(args, events, "\n".join(lines) or "no history yet")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_service(args) as svc:
        dest = _user(lambda: svc.keystore.export_keystore(svc.address, args.dest))
        emit(args, {"path": str(dest)}, f"keystore written to {dest} (keep it and its password safe)")
    return 0


def cmd_faucet(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    ntk, eth = _user(lambda: parse_units(args.ntk)), _user(lambda: parse_units(args.eth))
    with open_service(args) as svc:
        if not svc.network.test_tokens:
            raise UserError(f"there is no faucet on {svc.network.name}")
        me = _user(svc.signer)
        to = _user(lambda: svc.chain.w3.to_checksum_address(args.to))
        if eth:
            _user(lambda: svc.chain.transact(me, to=to, value_wei=eth, gas=21_000, what="sending ETH for gas"))
        if ntk:
            _user(lambda: svc.token().mint(me, to, ntk))
        emit(args, {"to": to, "ntk_wei": ntk, "eth_wei": eth}, f"sent {args.ntk} NTK and {args.eth} ETH to {to}")
    return 0
