"""`kminer order render` and `kminer order watch` on the order market (the default where the
network has one and the market is not only on this machine; `--p2p` asks for it): render orders
moved peer to peer (app.orders). One escrow per order; shards are claimed, delivered, sampled
and paid with signatures; results travel sealed between the two machines, no shared folder.

While an order is open the buyer's machine serves its order desk and inputs: `render` posts
and, unless --no-watch, keeps serving until the order is done (like `watch`). `fetch p2p:N
--out DIR` merges the verified, unsealed shards into one dataset (cli/commands/order_markets.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager

from app.amounts import eth_text, ntk_text
from app.errors import UserError
from cli.shared import emit, open_wallet, user_errors


@contextmanager
def _runner(args: argparse.Namespace):
    with open_wallet(args) as wallet, runner_on(wallet, args) as r:
        yield r


@contextmanager
def runner_on(wallet, args: argparse.Namespace):
    """The OrderBuyerRunner (desk, transfers, verify jobs) of an open wallet; one-line errors."""
    from app.home_lock import HomeBusy
    from app.orders.service import OrderBuyerRunner

    market = user_errors(wallet.market)
    me = user_errors(wallet.signer)
    try:
        r = OrderBuyerRunner(wallet.ctx, market, me, sandbox=getattr(args, "sandbox", None))
    except (ValueError, HomeBusy) as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot open the order desk or transfer ports: {e.strerror or e} "
                        "(kminer settings set transport.port N / transport.desk_port N)") from None
    try:
        yield r
    finally:
        r.close()


def cmd_render_p2p(args: argparse.Namespace, *, reward: int, deadline_s: int, review_s: int, size) -> int:
    from app.orders.service import post_cost
    from jobs.render.spec import SceneError, load_scene
    from wallet.fees import ORDER_GAS

    try:
        scene = load_scene(args.scene)
    except SceneError as e:
        raise UserError(f"scene: {e}") from None
    if not 1 <= args.shards <= min(128, args.count):
        raise UserError("--shards must be 1 to 128 and at most --count")
    with _runner(args) as r:
        chain = r.om.chain
        gas = ORDER_GAS["post_order"] + ORDER_GAS["approve"]
        fee = gas * user_errors(lambda: chain.read(lambda: chain.w3.eth.gas_price))
        cost = post_cost(shards=args.shards, reward_each_wei=reward, fee_wei=fee)
        text = "\n".join(f"  {x.label}: {x.text}" for x in cost.lines)
        if not args.json:
            print(f"{cost.title}\n{text}", file=sys.stderr)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserError("posting needs a confirmation: add --yes (no terminal to ask on)")
            if input("Post it? [y/N] ").strip().lower() not in ("y", "yes"):
                raise UserError("not posted")
        try:
            oid = r.post_render(scene, count=args.count, shards=args.shards, reward_each_wei=reward,
                                deadline_s=deadline_s, review_window_s=review_s, seed=args.seed, size=size,
                                assets=args.asset)
        except ValueError as e:
            raise UserError(str(e)) from None
        emit(args, {"market": "p2p", "ref": f"p2p:{oid}", "order_id": oid, "desk": r.buyer.desk_url, "escrow_wei": str(reward * args.shards),
                    "fee_wei_estimate": str(fee)},
             f"order {oid} posted on the order market: {args.shards} shard(s) of {args.count} frames, "
             f"{ntk_text(reward * args.shards)} escrowed (fee ≈ {eth_text(fee, 6)}); desk {r.buyer.desk_url}")
        if args.no_watch:
            print(f"serve it (miners need your desk) with: kminer order watch; then: kminer order fetch p2p:{oid} "
                  "--out DIR", file=sys.stderr)
            return 0
        return _watch(r, args)


def cmd_watch_p2p(args: argparse.Namespace) -> int:
    with _runner(args) as r:
        return _watch(r, args)


def _watch(r, args: argparse.Namespace) -> int:
    stop = threading.Event()
    old = signal.signal(signal.SIGINT, lambda *_: stop.set())
    t0 = time.monotonic()
    interval = getattr(args, "interval", 1.0) or 1.0
    try:
        while True:
            try:
                events = r.step()
            except Exception as e:  # noqa: BLE001 - RPC down...: say so, try again next pass
                events = [f"pass failed: {e}"]
            for e in events:
                if args.json:
                    print(json.dumps({"time": time.time(), "event": e}), flush=True)
                else:
                    print(time.strftime("%H:%M:%S ") + e, flush=True)
            if getattr(args, "until_idle", True) and r.idle() and not r.scheduler.running():
                return 0
            timeout = getattr(args, "timeout", None)
            if timeout is not None and time.monotonic() - t0 > timeout:
                print(f"kminer: error: orders still open after {timeout:g} s", file=sys.stderr)
                return 1
            if stop.wait(interval):
                return 0
    finally:
        signal.signal(signal.SIGINT, old)
