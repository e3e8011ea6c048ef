"""`kminer devnet`: a local Ethereum node (anvil) for trying the market with two processes.

The embedded `local` chain belongs to one process at a time (a file lock), so a miner agent
and a buyer in two terminals need a node both can reach. This starts anvil (the npm
package in node_modules, or `anvil` on PATH) on 127.0.0.1, prints its RPC URL and its funded
development accounts (anvil's well-known test mnemonic: the keys are public, never use them
on a real network), optionally writes each key to a file for `kminer wallet import`, and
stops the node on Ctrl-C. The chain lives in memory: it is gone when the node stops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).

DEV_MNEMONIC = "test test test test test test test test test test test junk"
"""anvil's default mnemonic: public test keys, funded with 10,000 ETH on every new devnet."""
ROOT = Path(__file__).resolve().parents[2]


def register(sub: Any) -> None:
    p = sub.add_parser("devnet", help="start a local Ethereum node (anvil) for the market across processes",
                       description="Start anvil on 127.0.0.1 with funded development accounts; Ctrl-C stops it.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; another one exposes the node to that network)")
    p.add_argument("--port", type=int, default=8545, help="RPC port (default 8545, the devnet network's default)")
    p.add_argument("--accounts", type=int, default=4, help="development accounts to list (default 4)")
    p.add_argument("--keys-dir", type=Path, metavar="DIR",
                   help="write each account's private key to DIR/devN.key (for `kminer wallet import --private-key-file`)")
    p.add_argument("--block-time", type=float, metavar="S", help="mine a block every S seconds (default: one per transaction)")
    p.add_argument("--json", action="store_true", help="print the node's details as one JSON line")
    p.set_defaults(handler=cmd_devnet)


def find_anvil() -> Path | None:
    """The anvil binary: the npm package beside the app (any platform's), else PATH."""
    for base in (ROOT / "node_modules" / "@foundry-rs", Path.cwd() / "node_modules" / "@foundry-rs"):
        for exe in sorted(base.glob("anvil-*/bin/anvil*")) if base.is_dir() else []:
            if exe.is_file() and os.access(exe, os.X_OK):
                return exe
    found = shutil.which("anvil")
    return Path(found) if found else None


def dev_accounts(n: int) -> list[tuple[str, str]]:
    """(address, private key hex) of the first `n` accounts of anvil's mnemonic."""
    from eth_account import Account  # deferred: eth-account takes ~1 s to load

    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(n):
        a = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((a.address, "0x" + a.key.hex().removeprefix("0x")))
    return out


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def cmd_devnet(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError("--port must be between 1 and 65535")
    if not 1 <= args.accounts <= 20:
        raise UserError("--accounts must be between 1 and 20")
    exe = find_anvil()
    if exe is None:
        raise UserError("anvil not found: run `npm ci` in the source folder (or install Foundry's anvil on PATH)")
    if not _port_free(args.port, args.host):
        raise UserError(f"port {args.port} on {args.host} is in use (another devnet?); choose one with --port")
    accounts = dev_accounts(args.accounts)
    keyfiles: list[str | None] = [None] * len(accounts)
    if args.keys_dir:
        try:
            args.keys_dir.mkdir(parents=True, exist_ok=True)
            for i, (_, key) in enumerate(accounts):
                f = args.keys_dir / f"dev{i}.key"
                fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(key + "\n")
                keyfiles[i] = str(f)
        except OSError as e:
            raise UserError(f"cannot write the key files in {args.keys_dir}: {e.strerror or e}") from None
    cmd = [str(exe), "--host", args.host, "--port", str(args.port), "--accounts", str(max(args.accounts, 10)),
           "--mnemonic", DEV_MNEMONIC, "--silent"]
    if args.block_time:
        cmd += ["--block-time", str(args.block_time)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    stop = {"now": False}
    old_int = signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    old_term = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        end = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines() if proc.stderr else []
                raise UserError(f"anvil exited at start: {err[-1] if err else f'code {proc.returncode}'}")
            try:
                with socket.create_connection((args.host, args.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > end:
                    raise UserError("anvil did not open its port within 20 s") from None
                time.sleep(0.05)
        url = f"http://{args.host}:{args.port}"
        if args.json:
            print(json.dumps({"rpc_url": url, "chain_id": 31337, "pid": proc.pid,
                              "accounts": [{"address": a, "key_file": k} for (a, _), k in zip(accounts, keyfiles)]}),
                  flush=True)
        else:
            print(f"devnet: anvil at {url} (chain id 31337); Ctrl-C stops it and forgets the chain", flush=True)
            print("development accounts (10,000 ETH each; public test keys: never use them on a real network):")
            for i, ((addr, key), kf) in enumerate(zip(accounts, keyfiles)):
                print(f"  dev{i} {addr}  " + (f"key in {kf}" if kf else f"key {key}"), flush=True)
            print(f"next: kminer wallet import --network devnet --rpc-url {url} --private-key-file FILE; "
                  "then `kminer market deploy --network devnet` (once, with dev0) and `kminer market use ...` "
                  "in the other homes", flush=True)
        while not stop["now"] and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None and not stop["now"]:
            print(f"kminer: error: anvil stopped (code {proc.returncode})", file=sys.stderr)
            return 1
        return 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
