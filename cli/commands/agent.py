"""`kminer agent`: the headless miner. Watches the job market of the wallet's network, claims
jobs its devices can run at or above their price floor, runs them, submits the results and
collects the payments (see app.miner.service). Prints one status line per device each pass
(job, progress, temperature, earnings today) and, while the chain or the artifact store is
away, "waiting for RPC (retry in N s)".

It signs with the rig's mining key when there is one (`kminer wallet mining-key create`), so it
starts after a reboot without the wallet password; else with the wallet (password asked). It
says whether the rig can claim ("ready for jobs", or the one reason and its fix: app.readiness)
at start and whenever that changes, and claims only while ready.

Ctrl-C once: claim nothing more; a running job expected to end within --grace seconds
finishes (and is submitted), the others stop now and are requeued (the next start runs them);
the agent says which. Ctrl-C twice (or SIGTERM): stop every job at once (requeued) and exit.

Rigs at scale (Settings.control/watchdog/fleet): paused devices and mining hours are honoured;
the watchdog's events print as "agent: watchdog: ..." lines and run the event script; with a
metrics port set, Prometheus metrics are served (127.0.0.1 by default); with a webhook set,
alerts are posted (see docs/rigs.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import json
import signal
import sys
import threading
import time
from typing import Any

from app.amounts import ntk_text
from app.errors import UserError
from cli.shared import user_errors, add_wallet_options, open_wallet

log = logging.getLogger(__name__)

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("agent", help="run the miner: claim market jobs, run them, submit, get paid",
                       description="The headless miner for rigs: watches the job market and works for NTK.")
    add_wallet_options(p)
    p.add_argument("--once", action="store_true", help="one pass: claim, run the claimed jobs to the end, submit, report; then exit")
    p.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between passes (default 2)")
    p.add_argument("--grace", type=float, default=60.0, metavar="S",
                   help="on Ctrl-C, let running jobs expected to end within S seconds finish (default 60)")
    p.add_argument("--sandbox", help="override the sandbox level for these jobs (strict, basic, none)")
    p.set_defaults(handler=cmd_agent)


def _work(line: dict) -> str:
    """What the device runs: "job 7 render", "order p2p:3 shard 1 render 5 NTK running", "no job"."""
    from app.miner import work_text

    return work_text(line) or "no job"


def _fmt(line: dict) -> str:
    job = _work(line)
    prog = f" {line['progress'] * 100:.0f}%" if line["progress"] is not None else ""
    temp = f" {line['temp_c']:.0f}°C" if line["temp_c"] is not None else ""
    state = line.get("state") or ("throttled" if line["throttled"] else ("mining" if line["active"] else line["mode"]))
    floor = line.get("floor_ntk_per_hour")
    fl = f"  floor {floor:g} NTK/h" if floor is not None else ""
    why = f"  ({line['reason']})" if line.get("reason") and state not in ("mining", "idle") else ""
    return f"{line['device']:<8} {state:<9} {job}{prog}{temp}  today {ntk_text(line['earned_today_wei'])}{fl}{why}"


class _Interrupts:
    """Counts Ctrl-C (SIGINT); SIGTERM counts as two. `event` wakes the main loop."""

    def __init__(self) -> None:
        self.count = 0
        self.event = threading.Event()

    def __call__(self, signum, _frame) -> None:
        self.count += 2 if signum == signal.SIGTERM else 1
        self.event.set()


def _say(text: str) -> None:
    print(f"agent: {text}", flush=True)


def _drain_plan(svc, grace_s: float) -> tuple[list[str], list[str]]:
    """(queue ids to let finish, queue ids to stop now): by the expected time each has left."""
    finish, stop = [], []
    now = time.time()
    for qid in svc.scheduler.running():
        left = svc.expected_left_s(qid, now)
        (finish if left is not None and left <= grace_s else stop).append(qid)
    return finish, stop


def cmd_agent(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UserError("--interval must be positive")
    if args.grace < 0:
        raise UserError("--grace must be 0 or more")
    intr = _Interrupts()
    old = {s: signal.signal(s, intr) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_wallet(args) as wallet:
            signer = _signer(wallet, derive_on_local=getattr(args, "account", None) is None)
            market = _wait_for_chain(wallet, intr)
            if market is not None:
                user_errors(lambda: _local_rig(wallet, market, signer))
                _serve(args, wallet.ctx, market, signer, intr, wallet)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def _signer(wallet, *, derive_on_local: bool):
    """The market signer (app.account.market_signer): the mining key, else the wallet (asked); on
    the embedded local chain, unless --account names the miner's own account, the wallet mines
    through its derived mining account, as the desktop app does, so the agent can take the
    orders this home posted (a buyer cannot claim its own)."""
    from app.account import NoMarketSigner, market_signer

    try:
        signer = market_signer(wallet, ask=True, derive_on_local=derive_on_local)
    except NoMarketSigner as e:
        raise UserError(f"{e.reason}: {e.fix} (kminer wallet mining-key create)") from None
    return signer


def _local_rig(wallet, market, signer) -> None:
    """On the embedded chain (test money, one user): gas for the derived mining account from the
    wallet, as the desktop app sends it (app.local_rig)."""
    from app import local_rig

    if local_rig.fund_gas(wallet, market.chain, signer) is not None:
        _say(f"local chain: the mining account {signer.address} got {local_rig.MINING_GAS_WEI // 10**18} test ETH for gas")


def _local_stake(wallet, market, runner, signer) -> None:
    """On the embedded chain: a stake of freshly minted test NTK for the mining account, so this
    home's own orders on the order market are granted to it (app.local_rig)."""
    from app import local_rig

    if signer.source == "local-mining-account" and local_rig.stake(wallet, market, runner, signer):
        _say(f"local chain: {local_rig.LOCAL_STAKE_WEI // 10**18} test NTK staked for {signer.address} on the order market")


def _local_buyer(args: argparse.Namespace, ctx, market, wallet):
    """On the embedded chain this process is the only one that may open the chain, so it also
    serves this home's open orders on the order market (their desk, checks and vouchers), as
    the desktop app does; None elsewhere (`kminer order watch` serves them) or with none open."""
    from app.orders.service import OrderBuyerRunner, buyer_has_orders

    if getattr(args, "account", None) is not None or not market.chain.embedded or not buyer_has_orders(ctx, market):
        return None  # --account: this agent mines as that account; the wallet's own orders are not its to serve
    from app.home_lock import HomeBusy

    try:
        runner = OrderBuyerRunner(ctx, market, wallet.signer(), sandbox=args.sandbox)
    except HomeBusy as e:
        raise UserError(f"cannot serve this home's orders: {e}") from None
    except OSError as e:
        raise UserError(f"cannot open this home's order desk: {e.strerror or e}") from None
    _say(f"orders: serving this home's open orders (desk {runner.buyer.desk_url})")
    return runner


def _step_buyer(buyer, as_json: bool) -> None:
    try:
        events = buyer.step()
    except Exception as e:  # noqa: BLE001 - the miner goes on; the next pass tries again
        log.exception("buyer pass failed")
        events = [f"pass failed: {e}"]
    for line in events:
        if as_json:
            print(json.dumps({"buyer_event": line}), flush=True)
        else:
            _say(f"orders (buyer): {line}")


def _wait_for_chain(wallet, intr: _Interrupts):
    """The market client, once the node answers: the agent of a rig outlives a node restart.
    None if Ctrl-C came first."""
    from app.miner import is_transient
    from wallet.errors import RpcUnavailable, WalletError

    delay = 1.0
    while intr.count == 0:
        try:
            return wallet.market()
        except Exception as e:
            if not (isinstance(e, RpcUnavailable) or is_transient(e)):
                if isinstance(e, (WalletError, ValueError)):
                    raise UserError(str(e)) from None
                raise
            _say(f"waiting for RPC (retry in {delay:.0f} s): {e}")
            intr.event.wait(delay)
            intr.event.clear()
            delay = min(60.0, delay * 2)
    return None


def _serve(args: argparse.Namespace, ctx, market, signer, intr: _Interrupts, wallet) -> None:
    from app.devices import DeviceService
    from app.earnings import EarningsService, Ledger
    from app.floors import fill_default_floors
    from app.home_lock import HomeBusy
    from app.miner import MinerService

    _say(f"signing with the {signer.source.replace('-', ' ')} {signer.address}, paid to {signer.payout}")
    with contextlib.ExitStack() as opened:  # whatever is opened here is closed, newest first, however this ends
        devices = DeviceService(ctx)
        opened.callback(devices.close)
        for key, fd in fill_default_floors(ctx, list(devices.devices)).items():
            _say(f"price floor of {key} set to its default {fd.basis}")
        ledger = Ledger(ctx.paths.ledger_db)
        opened.callback(ledger.close)
        earnings = EarningsService(ctx, ledger=ledger)
        opened.callback(earnings.close)
        readiness = _Readiness(ctx, wallet, devices, signer, args.sandbox)
        try:
            svc = MinerService(ctx, market, signer.account, devices, ledger, sandbox=args.sandbox, earnings=earnings)
        except HomeBusy as e:
            raise UserError(str(e)) from None
        opened.callback(svc.close)
        orders = _order_miner(ctx, market, signer, svc, wallet)
        if orders is not None:
            opened.callback(orders.close)
            svc.add_work_source(orders)  # its shards run in svc's queue: the status lines name them
        buyer = _local_buyer(args, ctx, market, wallet)  # (a UserError for the user) nothing opened stays open
        if buyer is not None:
            opened.callback(buyer.close)
        _run_rig(args, ctx, svc, orders, buyer, devices, readiness, intr, opened)


def _run_rig(args, ctx, svc, orders, buyer, devices, readiness, intr: _Interrupts, opened) -> None:
    """The agent's loop: a pass every --interval until Ctrl-C (finish, then stop) or twice (stop)."""
    from app.devices import HookRunner
    from app.fleet import RigReporter

    reporter = RigReporter(ctx, readiness=lambda _miner: readiness.state())
    hook = HookRunner(lambda: ctx.settings.watchdog, ctx.paths.data_dir)
    opened.callback(hook.close)
    opened.callback(reporter.close)
    devices.watchdog.subscribe(hook)
    devices.watchdog.subscribe(lambda ev: _say(f"watchdog: {ev.line()}"))
    draining = False
    _say(svc.sandbox_line())
    from jobs.render.photoreal_addon import status as photoreal_status

    _say(photoreal_status()[1])  # the optional engine: installed, or the one line saying how to add it
    try:
        url = reporter.start()
    except OSError as e:
        f = ctx.settings.fleet
        raise UserError(f"cannot serve metrics on {f.metrics_host}:{f.metrics_port}: {e.strerror or e}; "
                        "choose another port (kminer settings set fleet.metrics_port N)") from None
    if url:
        _say(f"metrics on {url}")
    while True:
        if intr.count >= 2:
            ids = svc.pause_running()
            _say(f"stopped at once; {len(ids)} running job(s) requeued" if ids else "stopped")
            break
        if intr.count == 1 and not draining:
            draining = True
            finish, stop = _drain_plan(svc, args.grace)
            for qid in stop:
                svc.pause_job(qid)
            _say("Ctrl-C: claiming nothing more; " + (f"finishing {_names(svc, finish)}; " if finish else "")
                 + (f"paused {_names(svc, stop)} (requeued, runs again on the next start); " if stop else "")
                 + "Ctrl-C again to stop at once")
        if ctx.reload_settings_if_changed():  # `kminer settings set ...` from another terminal
            svc.job_settings_changed()
            _say(f"settings changed: using the new ones; {svc.sandbox_line()}")
        claiming = not draining and readiness.check()
        svc.step(claim=claiming, start=not draining)
        if orders is not None:
            _step_orders(orders, args.json, claiming)
        if buyer is not None:
            _step_buyer(buyer, args.json)
        _report(reporter, svc)
        if args.once and not draining:  # finish what this pass started (Ctrl-C still stops), then submit it
            while intr.count == 0 and not svc.scheduler.wait_idle(min(args.interval, 0.5)):
                svc.step(claim=False)
                if orders is not None:
                    _step_orders(orders, args.json, False)
                if buyer is not None:
                    _step_buyer(buyer, args.json)
            if intr.count:
                continue  # Ctrl-C meanwhile: the top of the loop pauses or finishes the jobs
            svc.step(claim=False)
            if orders is not None:
                _commit_finished(orders, args.json, intr)
        _print_status(svc, args.json, reporter.last, orders)
        if draining and svc.scheduler.wait_idle(0):
            svc.step(claim=False, start=False)  # upload and submit what finished
            if orders is not None:
                _step_orders(orders, args.json, False)  # commit the shards that finished
            _print_status(svc, args.json, _report(reporter, svc), orders)
            _say("finished; exiting")
            break
        if args.once and not draining:
            break
        intr.event.wait(args.interval)
        intr.event.clear()


def _order_miner(ctx, market, signer, svc, wallet):
    """The order market's miner beside the job market's (same queue and devices), or None where
    the network has no order market. Says why buyers would not grant its claims (no stake)."""
    from app.orders.service import OrderMinerRunner

    if not getattr(market.deployment, "order_market", None):
        _say("orders: no order market on this network; mining jobs only")
        return None
    try:
        runner = OrderMinerRunner(ctx, market, signer, svc.queue, svc.store, quote=svc.quote_spec,
                                   ledger=svc.ledger, indexer=svc.indexer)
    except OSError as e:
        t = ctx.settings.transport
        raise UserError(f"cannot open the transfer port {t.listen_host}:{t.port}: {e.strerror or e}; choose another "
                        "(kminer settings set transport.port N)") from None
    t = runner.peer.node.config
    _say(f"orders: serving results on {', '.join(t.advertise)} (keys on {', '.join(t.key_servers)})")
    try:
        _local_stake(wallet, market, runner, signer)
        problem = runner.stake_problem()
    except BaseException:
        runner.close()
        raise
    if problem:
        _say(f"orders: {problem}")
    return runner


def _step_orders(orders, as_json: bool, claim: bool) -> None:
    from app.miner import is_transient

    try:
        events = orders.step(claim)
    except Exception as e:  # the job market mines on whatever the order side meets
        if is_transient(e):
            _say(f"orders: waiting for RPC: {e}")
        else:
            log.exception("order pass failed")
            _say(f"orders: pass failed: {e}")
        return
    for line in events:
        if as_json:
            print(json.dumps({"order_event": line}), flush=True)
        else:
            _say(f"orders: {line}")


def _commit_finished(orders, as_json: bool, intr: _Interrupts, wait_s: float = 10.0) -> None:
    """--once: the order-market shards whose jobs ended are committed before the agent exits
    (a few passes: the miner notices a finished job within a second)."""
    end = time.monotonic() + wait_s
    while intr.count == 0 and time.monotonic() < end:
        _step_orders(orders, as_json, False)
        if not any(v.stage == "running" for v in orders.views(active_only=True)):
            return
        intr.event.wait(0.5)


def _report(reporter, svc):
    """The fleet's view of this pass (metrics, alerts); a failure there never stops mining."""
    import logging

    try:
        return reporter.after_pass(svc)
    except Exception:
        logging.getLogger(__name__).exception("metrics/alerts after the pass failed")
        return reporter.last


class _Readiness:
    """Whether the rig can claim (app.rig), said at start and whenever it changes."""

    def __init__(self, ctx, wallet, devices, signer, sandbox):
        self.ctx, self.wallet, self.devices, self.signer, self.sandbox = ctx, wallet, devices, signer, sandbox
        self.last = None

    def check(self) -> bool:
        from app.rig import check_rig

        r = check_rig(self.ctx, self.wallet, self.devices.states(), signer=self.signer, sandbox=self.sandbox)
        if r != self.last:
            _say(r.reason.lower() if r.ready else f"{r.reason}. Fix: {r.fix}" + (f" ({r.command})" if r.command else ""))
            self.last = r
        return r.ready

    def state(self):
        """The readiness of the last pass (checked now if none was)."""
        if self.last is None:
            self.check()
        return self.last


def _names(svc, queue_ids: list[str]) -> str:
    def name(q: str) -> str:
        if (m := svc.market_id(q)) is not None:
            return f"job {m}"
        w = svc.queue_work(q)
        return f"order {w.ref} shard {w.shard}" if w is not None else q

    return ", ".join(name(q) for q in queue_ids)


def _print_status(svc, as_json: bool, snap=None, orders=None) -> None:
    lines = svc.device_lines()
    by_key = {d.key: d for d in snap.devices} if snap is not None else {}
    for line in lines:  # what holds a device: paused, held by the watchdog, outside its mining hours
        if line["key"] in by_key:
            line["state"], line["reason"] = by_key[line["key"]].state, by_key[line["key"]].reason
    waiting = svc.status_text()
    if as_json:
        doc = {"time": time.time(), "status": waiting, "devices": lines,
               "jobs": [r.__dict__ for r in svc.rows(active_only=True)]}
        if orders is not None:
            doc["orders"] = [v.as_dict() for v in orders.views(active_only=True)]
        print(json.dumps(doc), flush=True)
        return
    for line in lines:
        print(_fmt(line), flush=True)
    if waiting:
        _say(waiting)
    sys.stdout.flush()
