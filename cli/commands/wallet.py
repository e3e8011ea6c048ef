"""`kminer wallet`: keys, balances, sending, history.

    kminer wallet create|restore|import|address|balance|send|history|export|faucet [--network NAME] [--json]
    kminer wallet mining-key create|show|rotate|revoke   (the signing key of an unattended rig)
    kminer wallet stake N | unstake N | withdraw-stake     (the rig's stake on the order market)

Passwords come from --password-file, then $KMINER_PASSWORD, then the OS keyring (only if
"remember password" is on), then an interactive prompt. Secrets are read from files or the
prompt, never from the command line (other users could see them in `ps`).

`create` shows the new wallet's recovery phrase (BIP-39) once and, on a terminal, asks three of
its words back; `restore` makes the wallet again from the phrase.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.amounts import eth_text, ntk_text
from app.errors import UserError
from cli.commands.wallet_mining_key import register as register_mining_key
from cli.shared import add_wallet_options, emit, new_password, open_wallet, user_errors

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("wallet", help="wallet: keys, NTK and ETH balances, send, history",
                       description="Local keys (encrypted keystore files), balances, sending and history.")
    wsub = p.add_subparsers(dest="wallet_command", metavar="ACTION", required=True)

    c = wsub.add_parser("create", help="create a new account (encrypted with a password)")
    add_wallet_options(c, account=False)
    c.set_defaults(handler=cmd_create)

    r = wsub.add_parser("restore", help="restore a wallet from its recovery phrase (BIP-39 words)")
    add_wallet_options(r, account=False)
    r.add_argument("--phrase-file", metavar="FILE", type=Path, help="file holding the words (default: asked on the terminal)")
    r.set_defaults(handler=cmd_restore)

    i = wsub.add_parser("import", help="import a private key, a keystore V3 file or a BIP-39 mnemonic")
    add_wallet_options(i, account=False)
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--private-key-file", metavar="FILE", type=Path, help="file holding the hex private key")
    src.add_argument("--keystore", metavar="FILE", type=Path, help="a keystore V3 JSON file (opened with its password)")
    src.add_argument("--mnemonic-file", metavar="FILE", type=Path, help="file holding the BIP-39 words")
    i.add_argument("--index", type=int, default=0, help="account index on the mnemonic's path m/44'/60'/0'/0/N")
    i.add_argument("--keystore-password-file", metavar="FILE", type=Path,
                   help="password of the imported keystore, if not the same as the new one")
    i.set_defaults(handler=cmd_import)

    a = wsub.add_parser("address", help="list the accounts (the current one marked)")
    add_wallet_options(a, account=False)
    a.set_defaults(handler=cmd_address)

    b = wsub.add_parser("balance", help="ETH and NTK balance")
    add_wallet_options(b)
    b.add_argument("address", nargs="?", help="any address (default: your account)")
    b.set_defaults(handler=cmd_balance)

    s = wsub.add_parser("send", help="send NTK (or ETH)")
    add_wallet_options(s)
    s.add_argument("--to", required=True, metavar="ADDRESS")
    s.add_argument("--amount", required=True, help="amount in NTK (or ETH), e.g. 12.5")
    s.add_argument("--asset", choices=["NTK", "ETH"], default="NTK")
    s.set_defaults(handler=cmd_send)

    h = wsub.add_parser("history", help="NTK transfers and market events of your account")
    add_wallet_options(h)
    h.add_argument("--limit", type=int, default=50)
    h.set_defaults(handler=cmd_history)

    e = wsub.add_parser("export", help="write your account's keystore file to FILE")
    add_wallet_options(e)
    e.add_argument("dest", type=Path, metavar="FILE")
    e.set_defaults(handler=cmd_export)

    register_mining_key(wsub)

    st = wsub.add_parser("stake", help="stake NTK on the order market for this rig's claims (from the wallet)")
    add_wallet_options(st)
    st.add_argument("amount", help="NTK to add to the stake")
    st.add_argument("--yes", action="store_true", help="stake without asking (for scripts)")
    st.set_defaults(handler=cmd_stake)

    un = wsub.add_parser("unstake", help="start taking stake back: it unbonds for the order market's delay (14 days)")
    add_wallet_options(un)
    un.add_argument("amount", help="NTK of the stake to unbond")
    un.add_argument("--yes", action="store_true", help="unstake without asking (for scripts)")
    un.set_defaults(handler=cmd_unstake)

    wd = wsub.add_parser("withdraw-stake", help="take the unbonded stake back to the wallet (after the delay)")
    add_wallet_options(wd)
    wd.add_argument("--yes", action="store_true", help="withdraw without asking (for scripts)")
    wd.set_defaults(handler=cmd_withdraw_stake)

    f = wsub.add_parser("faucet", help="test networks: mint NTK (and send ETH for gas) to an address; deployer only")
    add_wallet_options(f)
    f.add_argument("--to", required=True, metavar="ADDRESS")
    f.add_argument("--ntk", default="1000", help="NTK to mint (default 1000)")
    f.add_argument("--eth", default="1", help="ETH to send for gas (default 1)")
    f.set_defaults(handler=cmd_faucet)


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
        svc.use_account(address)
        user_errors(svc.deployment)


def cmd_create(args: argparse.Namespace) -> int:
    password = new_password(args)
    with open_wallet(args) as svc:
        address, phrase = user_errors(lambda: svc.keystore.create_with_phrase(password))
        svc.passwords.insert(0, lambda a: password)
        _remember(svc.ctx, address, password)
        if not args.json:
            _show_phrase(phrase)
        _adopt(svc, address)
        emit(args, {"address": address, "keystore": str(svc.keystore.path_for(address)), "recovery_phrase": phrase},
             address)
    return 0


def _show_phrase(phrase: str) -> None:
    """The recovery phrase, once, on stderr; on a terminal three of its words are asked back."""
    from wallet.recovery_phrase import quiz_positions, wrong_positions

    words = phrase.split()
    print("Your recovery phrase (write it down, in order, and keep it offline; anyone with it owns the wallet):",
          file=sys.stderr)
    for row in range(0, len(words), 4):
        print("   " + "  ".join(f"{i + 1:>2}. {w:<10}" for i, w in enumerate(words[row:row + 4], start=row)),
              file=sys.stderr)
    if not sys.stdin.isatty():
        return
    import getpass

    for _attempt in range(3):
        answers = {p: getpass.getpass(f"Word {p} of your phrase: ") for p in quiz_positions(len(words))}
        wrong = wrong_positions(phrase, answers)
        if not wrong:
            print("Checked: you have the phrase.", file=sys.stderr)
            return
        print(f"Word {', '.join(map(str, wrong))} did not match; look at the phrase again.", file=sys.stderr)
    print("note: the words were not checked; the wallet is made: keep the phrase safe", file=sys.stderr)


def cmd_restore(args: argparse.Namespace) -> int:
    """A wallet from its recovery phrase: bad words are one line and nothing is written."""
    from wallet.recovery_phrase import check_phrase

    if args.phrase_file:
        text = _read_secret(args.phrase_file)
    elif sys.stdin.isatty():
        import getpass

        text = getpass.getpass("Recovery phrase (the words, separated by spaces; not shown): ")
    else:
        raise UserError("no recovery phrase: use --phrase-file FILE (no terminal to ask on)")
    phrase = user_errors(lambda: check_phrase(text))  # before the password: a typo costs nothing
    password = new_password(args)
    with open_wallet(args) as svc:
        address = user_errors(lambda: svc.keystore.import_mnemonic(phrase, password))
        svc.passwords.insert(0, lambda a: password)
        _remember(svc.ctx, address, password)
        _adopt(svc, address)
        emit(args, {"address": address, "keystore": str(svc.keystore.path_for(address))}, f"restored {address}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from wallet.keystore import password_from_file

    password = new_password(args)
    with open_wallet(args) as svc:
        ks = svc.keystore
        if args.private_key_file:
            key = _read_secret(args.private_key_file)
            address = user_errors(lambda: ks.import_private_key(key, password))
        elif args.mnemonic_file:
            words = _read_secret(args.mnemonic_file)
            address = user_errors(lambda: ks.import_mnemonic(words, password, index=args.index))
        else:
            old = user_errors(lambda: password_from_file(args.keystore_password_file)("")) if args.keystore_password_file else password
            address = user_errors(lambda: ks.import_keystore(args.keystore, old, new_password=password))
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
    with open_wallet(args) as svc:
        keys = user_errors(svc.keystore.accounts)   # a corrupt-only keystore is an error, not "no accounts"
        current = svc.ctx.settings.wallet.account
        rows = [{"address": k.address, "current": bool(current) and k.address.lower() == current.lower()} for k in keys]
        emit(args, rows, "\n".join(f"{'*' if r['current'] else ' '} {r['address']}" for r in rows) or "no accounts")
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        b = user_errors(lambda: svc.balances(args.address))
        ntk = "unknown (no NTK contract on this network)" if b.ntk_wei is None else ntk_text(b.ntk_wei)
        emit(args, b, f"{b.address} on {b.network} (chain {b.chain_id}): {ntk}, {eth_text(b.eth_wei)}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    amount = user_errors(lambda: parse_units(args.amount))
    with open_wallet(args) as svc:
        me = user_errors(svc.signer)
        if args.asset == "ETH":
            res = user_errors(lambda: svc.chain.transact(me, to=svc.chain.w3.to_checksum_address(args.to), value_wei=amount,
                                                   gas=21_000, what=f"sending {args.amount} ETH"))
        else:
            res = user_errors(lambda: svc.token().transfer(me, args.to, amount))
        emit(args, {"tx_hash": res.tx_hash, "block": res.block_number, "amount_wei": amount, "asset": args.asset},
             f"sent {args.amount} {args.asset} to {args.to} (tx {res.tx_hash}, block {res.block_number})")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        address = user_errors(lambda: svc.address)
        idx = user_errors(svc.indexer)
        try:
            user_errors(idx.sync)
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
    with open_wallet(args) as svc:
        dest = user_errors(lambda: svc.keystore.export_keystore(svc.address, args.dest))
        emit(args, {"path": str(dest)}, f"keystore written to {dest} (keep it and its password safe)")
    return 0


def cmd_faucet(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    ntk, eth = user_errors(lambda: parse_units(args.ntk)), user_errors(lambda: parse_units(args.eth))
    with open_wallet(args) as svc:
        if not svc.network.test_tokens:
            raise UserError(f"there is no faucet on {svc.network.name}")
        me = user_errors(svc.signer)
        to = user_errors(lambda: svc.chain.w3.to_checksum_address(args.to))
        if eth:
            user_errors(lambda: svc.chain.transact(me, to=to, value_wei=eth, gas=21_000, what="sending ETH for gas"))
        if ntk:
            user_errors(lambda: svc.token().mint(me, to, ntk))
        emit(args, {"to": to, "ntk_wei": ntk, "eth_wei": eth}, f"sent {args.ntk} NTK and {args.eth} ETH to {to}")
    return 0


def _stake_actions(svc):
    """app.stake.StakeActions over the CLI's wallet: the rig's signer (its mining key
    when there is one, else the wallet itself) and the wallet account paying."""
    from app.account import NoMarketSigner, market_signer
    from app.stake import StakeActions

    def signer():
        try:
            return market_signer(svc, ask=True)
        except NoMarketSigner as e:
            raise UserError(f"{e.reason}: {e.fix}") from None

    return StakeActions(market=svc.market, signer=signer, payer=svc.signer, payer_address=lambda: svc.address,
                        network=lambda: svc.network)


def _confirm_stake(args, acts, action: str, amount: int, st) -> None:
    """Print what `action` moves and costs (the GUI's confirmation, as text) and ask."""
    cost = user_errors(lambda: acts.cost(action, amount, st))
    if not args.json:
        lines = "\n".join(f"  {x.label}: {x.text}" + (f"  ({x.note})" if x.note else "") for x in cost.lines)
        notes = "\n".join(f"  {n}" for n in cost.notes)
        print(f"{cost.title} for {st.miner} paid to {st.payout} (now {st.summary()}):\n{lines}\n{notes}",
              file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(f"{action} needs a confirmation: add --yes (no terminal to ask on)")
        if input(f"{action.capitalize()}? [y/N] ").strip().lower() not in ("y", "yes"):
            raise UserError(f"not done: {action}")


def _stake_emit(args, st) -> None:
    emit(args, {"miner": st.miner, "payout": st.payout, "stake_wei": str(st.active_wei),
                "withdrawing_wei": str(st.withdrawing_wei), "unlock_at": st.unlock_at},
         f"stake of {st.miner} paid to {st.payout}: {st.summary()}")


def _stake_command(args: argparse.Namespace, action: str) -> int:
    from app.amounts import FieldError
    from app.stake import check_stake_amount, check_unstake_amount

    with open_wallet(args) as svc:
        acts = _stake_actions(svc)
        st = user_errors(acts.status)
        if not st.can_pay:
            raise UserError(f"the rig is paid to {st.payout}: {action} from that account (--account {st.payout})")
        amount = 0
        try:
            if action == "stake":
                amount = check_stake_amount(args.amount, st)
            elif action == "unstake":
                amount = check_unstake_amount(args.amount, st)
        except FieldError as e:
            raise UserError(str(e).rstrip(".")) from None
        if action == "withdraw" and not st.withdrawable:
            user_errors(acts.withdraw)  # says why not, in one line
        _confirm_stake(args, acts, action, amount, st)
        do = {"stake": lambda: acts.stake(amount), "unstake": lambda: acts.unstake(amount),
              "withdraw": acts.withdraw}[action]
        _stake_emit(args, user_errors(do))
    return 0


def cmd_stake(args: argparse.Namespace) -> int:
    """Buyers of orders grant claims only against a stake of the claiming key and its payout
    (slashed if a claim is abandoned). The stake is paid from the wallet for the rig's signer:
    its mining key when there is one, else the wallet itself; it comes back after unbonding."""
    return _stake_command(args, "stake")


def cmd_unstake(args: argparse.Namespace) -> int:
    """Start unbonding part of the stake: it stops covering claims now and can be withdrawn
    after the order market's delay (it can still be slashed until then)."""
    return _stake_command(args, "unstake")


def cmd_withdraw_stake(args: argparse.Namespace) -> int:
    """Take the unbonded stake back to the wallet once the delay has passed."""
    return _stake_command(args, "withdraw")
