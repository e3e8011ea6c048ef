"""`kminer order`: the buyer's orders on both markets, headless.

    kminer order render SCENE.json --count N --shards K --reward NTK   (NTK per shard)
    kminer order train --dataset ORDER|DIR [--holdout ORDER|DIR] --min-metric M --reward NTK ...   (order market)
    kminer order train --job-market --data ORDER [--holdout ORDER] --reward NTK --epochs N ...
    kminer order list | show ID | watch | fetch ID --out DIR | repost ID      [--json]

`render` and `train` post on the order market (one escrow, results peer to peer: order_p2p.py)
wherever the network has one, the local chain and devnets included (app.orders.service.by_default,
the GUI's rule), else on the job market; `--p2p` / `--job-market` choose. Order ids name their market
(`p2p:N`, `job:N`; order_markets.py). `watch` is the buyer's loop: on the job market
(app.buyer.BuyerService.step) it follows every order on the chain, fetches and verifies each
result in the sandbox, accepts or rejects it with the figures, refunds overdue shards, merges
the dataset and posts train orders whose data is verified; it also serves this home's open
order-market orders (desk, sampling, vouchers, unsealing). Network, account and password
options are those of `kminer wallet`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from app.amounts import ntk_text
from app.errors import UserError
from cli.commands.order_markets import ID_HELP
from cli.shared import plain, user_errors, add_wallet_options, emit, open_wallet

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("order", help="buy data and models: post render/train orders, verify, accept, fetch",
                       description="Rendered datasets (in shards) and models trained on them, verified before they are "
                                   "paid. Two markets: the order market (one escrow per order, results moved peer to "
                                   "peer; the default wherever the network has one, the local chain included) and "
                                   "the job market (one market job per shard; --job-market).",
                       epilog="Order ids: both markets number orders from 1, so `list` names each with its market: "
                              "p2p:N (order market) or job:N (job market). `show`, `fetch` take either; a bare N "
                              "means the default market's order N (the other market's when only it has an N), and "
                              "--p2p / --job-market say it too.")
    osub = p.add_subparsers(dest="order_command", metavar="ACTION", required=True)

    r = osub.add_parser("render", help="order a rendered dataset of a scene, split into shard jobs")
    add_wallet_options(r)
    r.add_argument("scene", type=Path, metavar="SCENE.json", help="the scene spec (see resources/scenes)")
    r.add_argument("--count", type=int, required=True, help="frames to render")
    r.add_argument("--shards", type=int, default=1, help="market jobs to split the frames into (default 1)")
    r.add_argument("--reward", required=True, help="NTK paid per shard")
    r.add_argument("--seed", type=int, help="render seed (default: the scene's)")
    r.add_argument("--size", metavar="WxH", help="image size, e.g. 320x240 (default: the scene's)")
    r.add_argument("--asset", type=Path, action="append", default=[], metavar="FILE",
                   help="a file the scene names by sha256 (mesh, label or background image); repeatable")
    r.add_argument("--sample", type=int, default=3, help="frames re-rendered to verify each shard (default 3)")
    r.add_argument("--name", help="a name for the order")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--p2p", action="store_true",
                   help="one order on the order market, results moved peer to peer (no shared folder); your "
                        "machine serves the order desk while it is open (the default where the network has an "
                        "order market)")
    g.add_argument("--job-market", action="store_true",
                   help="one market job per shard on the job market (the default only where no order market is deployed)")
    r.add_argument("--no-watch", action="store_true", help="on the order market: post and exit (serve later: watch)")
    r.add_argument("--yes", action="store_true", help="on the order market: post without asking (for scripts)")
    _terms(r)
    r.set_defaults(handler=cmd_render)

    t = osub.add_parser("train", help="order a model trained on the data of render orders (posted once it is verified)")
    add_wallet_options(t)
    t.add_argument("--data", type=int, action="append", metavar="ORDER",
                   help="with --job-market: a job-market render order whose dataset to train on; repeatable")
    t.add_argument("--dataset", action="append", metavar="ORDER|DIR",
                   help="a finished order-market render order (N or p2p:N), or a COCO dataset folder, to train on; "
                        "repeatable (order market)")
    t.add_argument("--holdout", metavar="ORDER|DIR",
                   help="data kept back to verify the model: a render order (job market: default the last shard "
                        "of the last --data; order market: an order or a folder, default --holdout-share of the data)")
    t.add_argument("--holdout-share", type=float, default=0.2, metavar="F",
                   help="order market, no --holdout: the share of the images kept back (default 0.2)")
    t.add_argument("--min-metric", type=float, metavar="M",
                   help="order market, required: the least mAP@0.5 (accuracy for classifiers, 0 < M <= 1) the "
                        "model must measure on the held-out data to be paid (the card's own figure is the miner's)")
    t.add_argument("--reward", required=True, help="NTK paid for the model")
    t.add_argument("--epochs", type=int, help="passes over the data")
    t.add_argument("--batch", type=int, help="images per step")
    t.add_argument("--arch", help="architecture (default centernet-s)")
    t.add_argument("--input-size", metavar="WxH", help="model input size, e.g. 320x240")
    t.add_argument("--params", type=Path, metavar="FILE", help="JSON object of further training parameters")
    t.add_argument("--tolerance", type=float, metavar="T",
                   help="how far below its card's metric the model may measure on the held-out data (default: "
                        "from the held-out and validation image counts, at least 0.05, shown before posting; an "
                        "order market order whose default is 0.3 or more, too few held-out images, needs it named)")
    t.add_argument("--name", help="a name for the order")
    g = t.add_mutually_exclusive_group()
    g.add_argument("--p2p", action="store_true",
                   help="one order on the order market: your data sealed and served peer to peer, the model checked "
                        "on held-out images the miner never sees; your machine serves the order desk while it is open "
                        "(the default where the network has an order market)")
    g.add_argument("--job-market", action="store_true",
                   help="a train order on the job market, posted by `order watch` once its --data is verified")
    t.add_argument("--no-watch", action="store_true", help="order market: post and exit (serve later: watch)")
    t.add_argument("--yes", action="store_true", help="order market: post without asking (for scripts)")
    _terms(t)
    t.set_defaults(handler=cmd_train)

    ls = osub.add_parser("list", help="your orders on this network, both markets (ids p2p:N and job:N)")
    add_wallet_options(ls)
    ls.set_defaults(handler=cmd_list)

    sh = osub.add_parser("show", help="one order with its shards (states, miners, figures, payments, result folders)")
    add_wallet_options(sh)
    sh.add_argument("order_id", metavar="ID", help=ID_HELP)
    _market_flags(sh)
    sh.set_defaults(handler=cmd_show)

    w = osub.add_parser("watch", help="verify, accept or reject, refund, merge: the buyer's loop (Ctrl-C stops)")
    add_wallet_options(w)
    w.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between passes (default 2)")
    w.add_argument("--until-idle", action="store_true",
                   help="exit once every order is done, stalled or failed (nothing left to wait for)")
    w.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds (exit 1)")
    w.add_argument("--sandbox", help="override the sandbox level of the verify jobs (strict, basic)")
    g = w.add_mutually_exclusive_group()
    g.add_argument("--p2p", action="store_true", help="only your orders on the order market (serve their desk)")
    g.add_argument("--job-market", action="store_true", help="only your orders on the job market "
                   "(default: both; the order market's when this home has open orders there)")
    w.set_defaults(handler=cmd_watch)

    f = osub.add_parser("fetch", help="copy a finished order's dataset or model to a folder")
    add_wallet_options(f)
    f.add_argument("order_id", metavar="ID", help=ID_HELP)
    f.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new (or empty) folder")
    _market_flags(f)
    f.set_defaults(handler=cmd_fetch)

    rp = osub.add_parser("repost", help="post the rejected or refunded shards of a job-market order again")
    add_wallet_options(rp)
    rp.add_argument("order_id", metavar="ID", help="the order: N or job:N (job market; order-market orders are "
                                                   "refunded, then posted anew)")
    rp.set_defaults(handler=cmd_repost)


def _market_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--p2p", action="store_true", help="an order on the order market (same as p2p:N)")
    g.add_argument("--job-market", action="store_true", help="an order on the job market (same as job:N)")


def _terms(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deadline-hours", type=float, default=24.0, help="each job is due within this many hours of posting")
    p.add_argument("--review-hours", type=float, default=24.0,
                   help="how long you have to verify and answer a result before the miner may pay himself")


def _size(text: str | None, what: str) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise UserError(f"{what} {text!r}: use WIDTHxHEIGHT, e.g. 320x240") from None
    if w < 1 or h < 1:
        raise UserError(f"{what} {text!r}: width and height must be positive")
    return w, h


def _hours(args: argparse.Namespace) -> tuple[int, int]:
    if args.deadline_hours <= 0 or args.review_hours <= 0:
        raise UserError("--deadline-hours and --review-hours must be positive")
    return max(1, round(args.deadline_hours * 3600)), max(1, round(args.review_hours * 3600))


@contextmanager
def _buyer(args: argparse.Namespace, *, signer: bool = True):
    """A BuyerService on the wallet's network (one-line errors for wallet and order problems)."""
    with open_wallet(args) as wallet, _buyer_on(wallet, args, signer=signer) as svc:
        yield svc


@contextmanager
def _buyer_on(wallet, args: argparse.Namespace, *, signer: bool = True):
    from app.buyer import BuyerError, BuyerService
    from wallet.errors import WalletError

    market = user_errors(wallet.market)
    me = user_errors(wallet.signer) if signer else None
    svc = BuyerService(wallet.ctx, market, me, sandbox=getattr(args, "sandbox", None))
    try:
        yield svc
    except (BuyerError, WalletError) as e:
        raise UserError(str(e)) from None
    finally:
        svc.close()


def order_doc(o) -> dict:
    """An OrderStatus (job market) as plain JSON data (amounts in wei as strings)."""
    return {"market": "job", "ref": f"job:{o.id}", **plain(o), "progress": round(o.progress, 4), "settled": o.settled,
            "total_wei": str(o.total_wei)}


def _fig(f: dict | None) -> str:
    if not f:
        return ""
    if "check" in f or "error" in f:
        return f" [{f.get('check') or f.get('error')}]"
    if "rgb_mad_max" in f:
        return (f" [{f.get('mode')}: {f.get('exact_matches')}/{len(f.get('frames_checked') or [])} exact, "
                f"MAD max {f.get('rgb_mad_max')}, box IoU min {f.get('box_iou_min')}]")
    return f" [{f.get('metric')} claimed {f.get('claimed')}, measured {f.get('measured')}, gap {f.get('gap')}]"


def order_line(o, ref: str | None = None) -> str:
    """One job-market order in a line; `ref`: how to name it (default `order N`)."""
    what = f"{o.params.get('count')} frames" if o.kind == "render" else f"on order(s) {', '.join(map(str, o.params['data']))}"
    return (f"{ref or f'order {o.id}'} {o.kind} '{o.name}' {what}: {o.state}, {o.settled}/{len(o.shards)} shard(s) settled, "
            f"{ntk_text(o.total_wei)}" + (f" -> {o.output_dir}" if o.output_dir else "")
            + (f"\n  {o.reason}" if o.reason and o.state != "done" else ""))


def shard_line(s) -> str:
    rng = f" frames {s.start}-{s.start + s.count - 1}" if s.count else ""
    job = f" job #{s.job_id}" if s.job_id else ""
    miner = f" by {s.miner}" if s.miner else ""
    chain = f" (chain: {s.chain_status})" if s.chain_status and s.chain_status != s.state else ""
    return f"  shard {s.index}{rng}{job}: {s.state}{chain}{miner}{_fig(s.figures)}"


def cmd_render(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    reward = user_errors(lambda: parse_units(args.reward))
    deadline_s, review_s = _hours(args)
    size = _size(args.size, "--size")
    if not args.scene.is_file():
        raise UserError(f"scene file {args.scene} not found")
    from cli.commands.order_markets import P2P, default_market_of, flagged

    market = flagged(args)
    chosen = market is None
    if chosen:
        market = default_market_of(args)
    if market == P2P:
        from cli.commands.order_p2p import cmd_render_p2p

        return cmd_render_p2p(args, reward=reward, deadline_s=deadline_s, review_s=review_s, size=size,
                              say_market=chosen)
    with _buyer(args) as svc:
        o = svc.post_render(args.scene, count=args.count, shards=args.shards, reward_each_wei=reward,
                            deadline_s=deadline_s, review_window_s=review_s, seed=args.seed, size=size,
                            assets=args.asset, name=args.name, verify_sample=args.sample)
        emit(args, order_doc(o), order_line(o) + "\n" + "\n".join(shard_line(s) for s in o.shards)
             + "\nfollow it with: kminer order watch")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    reward = user_errors(lambda: parse_units(args.reward))
    deadline_s, review_s = _hours(args)
    params: dict[str, Any] = {}
    if args.params:
        from common.jsonfile import read_json

        params = read_json(args.params, "--params", UserError)  # capped and depth-limited, one-line errors
        if not isinstance(params, dict):
            raise UserError(f"--params {args.params}: expected a JSON object")
    for key in ("epochs", "batch", "arch"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.input_size:
        params["input_size"] = list(_size(args.input_size, "--input-size"))
    from cli.commands.order_markets import P2P, default_market_of, flagged

    market = flagged(args)
    if market is None:
        if not args.data and not args.dataset:
            raise UserError("name the data: --dataset ORDER|DIR (order market), or --job-market --data ORDER")
        market = P2P if args.dataset else default_market_of(args)
        if market == P2P and args.data:
            raise UserError("--data names job-market orders: add --job-market, or train on the order market "
                            "with --dataset ORDER|DIR")
    if market == P2P:
        from cli.commands.order_p2p import cmd_train_p2p

        if args.dataset and not args.data and args.min_metric is None:  # (no data: cmd_train_p2p says so)
            raise UserError("a train order on the order market needs --min-metric M: the least mAP@0.5 (accuracy for "
                            "classifiers) the model must measure on your held-out images to be paid")
        if args.min_metric is not None and not 0 < args.min_metric <= 1:
            raise UserError("--min-metric must be more than 0 and at most 1")

        return cmd_train_p2p(args, reward=reward, deadline_s=deadline_s, review_s=review_s, params=params,
                             say_market=not (args.p2p or args.job_market))
    if not args.data:
        raise UserError("name the data: --data ORDER (job market), or --dataset ORDER|DIR (order market)")
    if args.holdout is not None and not args.holdout.isdigit():
        raise UserError(f"--holdout {args.holdout!r}: on the job market, a render order's number")
    holdout = int(args.holdout) if args.holdout is not None else None
    with _buyer(args) as svc:
        o = svc.post_train(args.data, train_params=params, reward_wei=reward, deadline_s=deadline_s,
                           review_window_s=review_s, holdout_order=holdout, name=args.name,
                           **({} if args.tolerance is None else {"tolerance": args.tolerance}))
        emit(args, order_doc(o), order_line(o) + "\n  posted by `kminer order watch` once its data is verified")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from cli.commands.order_markets import JOB, NAMES, P2P, p2p_doc, p2p_line, p2p_views

    with _buyer(args, signer=False) as svc:
        orders = svc.orders()
        views = p2p_views(svc.ctx, svc.market)
    text = []
    if orders:
        text += [f"{NAMES[JOB]}:"] + ["  " + order_line(o, f"job:{o.id}").replace("\n", "\n  ") for o in orders]
    if views:
        text += [f"{NAMES[P2P]}:"] + ["  " + p2p_line(v).replace("\n", "\n  ") for v in views]
    emit(args, [order_doc(o) for o in orders] + [p2p_doc(v) for v in views], "\n".join(text) or "no orders")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from cli.commands.order_markets import NAMES, P2P, p2p_detail, p2p_doc, p2p_views, parse_ref, resolve

    ref_market, oid = parse_ref(args.order_id)
    with _buyer(args, signer=False) as svc:
        market = resolve(args, svc.ctx, svc.market, oid, ref_market, lambda i: svc.book.order(i) is not None)
        if market == P2P:
            views = p2p_views(svc.ctx, svc.market, oid)
            if not views:
                raise UserError(f"no order p2p:{oid} of yours on this network's order market (see `kminer order list`)")
            emit(args, p2p_doc(views[0]), p2p_detail(views[0]))
            return 0
        o = svc.order(oid)
        emit(args, order_doc(o), order_line(o, f"job:{o.id} on the {NAMES['job']}:") + "\n"
             + "\n".join(shard_line(s) for s in o.shards))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from cli.commands.order_markets import P2P, fetch_p2p, flagged, parse_ref, resolve

    ref_market, oid = parse_ref(args.order_id)
    market = flagged(args, ref_market)
    with _buyer(args, signer=False) as svc:
        if market is None:
            market = resolve(args, svc.ctx, svc.market, oid, None, lambda i: svc.book.order(i) is not None)
        if market == P2P:
            got = fetch_p2p(svc.ctx, svc.market, oid, args.out)
            ranges = got["frame_ranges"]
            emit(args, {"market": "p2p", "ref": f"p2p:{oid}", "order_id": oid, "out": str(args.out),
                        "path": str(args.out), **got},
                 f"order p2p:{oid}: the verified model copied to {args.out}" if got["kind"] == "train" else
                 f"order p2p:{oid}: {sum(b - a for a, b in ranges)} frames merged into {args.out}")
            return 0
        dest = svc.fetch(oid, args.out)
        emit(args, {"market": "job", "ref": f"job:{oid}", "order_id": oid, "path": str(dest)},
             f"order job:{oid} copied to {dest}")
    return 0


P2P_REPOST = ("order p2p:{n} is on the order market, which has no repost: `kminer order watch --p2p` refunds its "
              "undelivered shards once the order closes; then post the work again (`kminer order render --p2p ...` "
              "or `kminer order train --p2p ...`)")


def cmd_repost(args: argparse.Namespace) -> int:
    from cli.commands.order_markets import P2P, parse_ref

    market, oid = parse_ref(args.order_id)
    if market == P2P:
        raise UserError(P2P_REPOST.format(n=oid))
    with _buyer(args) as svc:
        o = svc.repost(oid)
        emit(args, order_doc(o), order_line(o) + "\n" + "\n".join(shard_line(s) for s in o.shards))
    return 0


IDLE_STATES = frozenset({"done", "stalled", "failed"})


def cmd_watch(args: argparse.Namespace) -> int:
    """Job-market orders, and this home's open order-market orders too (unless a flag names one market)."""
    if args.interval <= 0:
        raise UserError("--interval must be positive")
    if args.p2p:
        from cli.commands.order_p2p import cmd_watch_p2p

        return cmd_watch_p2p(args)
    stop = threading.Event()
    old = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with open_wallet(args) as wallet, _buyer_on(wallet, args) as svc, _p2p_runner(wallet, args) as runner:
            return _watch_loop(args, svc, runner, stop)
    finally:
        signal.signal(signal.SIGINT, old)


@contextmanager
def _p2p_runner(wallet, args: argparse.Namespace):
    """The order-market buyer beside the job market's, when this home has open orders there
    and no flag keeps `watch` on the job market; else None."""
    from app.orders.service import buyer_has_orders

    if args.job_market or not buyer_has_orders(wallet.ctx, user_errors(wallet.market)):
        yield None
        return
    from cli.commands.order_p2p import runner_on

    with ExitStack() as stack:
        try:
            r = stack.enter_context(runner_on(wallet, args))
        except UserError as e:  # e.g. `order render` still serves the desk in another process
            print(f"kminer: order market not served here: {e}; following the job market", file=sys.stderr)
            r = None
        yield r


def _watch_loop(args: argparse.Namespace, svc, runner, stop: threading.Event) -> int:
    t0 = time.monotonic()
    last: dict[int, str] = {}
    while True:
        events: list[str] = []
        for what, step in (("", svc.step), ("order market: ", runner.step if runner else None)):
            if step is None:
                continue
            try:
                events += [what + e for e in step()]
            except Exception as e:  # noqa: BLE001 - RPC down...: say so, try again next pass
                events.append(f"{what}pass failed: {e}")
        orders = svc.orders()
        active = [o for o in orders if o.state not in IDLE_STATES]
        if args.json:
            print(json.dumps({"time": time.time(), "events": events,
                              "orders": [order_doc(o) for o in orders if o.state not in IDLE_STATES
                                         or o.id in last]}), flush=True)
        else:
            for e in events:
                print(time.strftime("%H:%M:%S ") + e, flush=True)
            for o in orders:
                text = order_line(o) + "\n" + "\n".join(shard_line(s) for s in o.shards)
                if (o.state not in IDLE_STATES or o.id in last) and last.get(o.id) != text:
                    print(text, flush=True)
            for o in orders:
                last[o.id] = order_line(o) + "\n" + "\n".join(shard_line(s) for s in o.shards)
        p2p_idle = runner is None or (runner.idle() and not runner.scheduler.running())
        if args.until_idle and not active and not svc.scheduler.running() and p2p_idle:
            return 0
        if args.timeout is not None and time.monotonic() - t0 > args.timeout:
            print(f"kminer: error: orders still open after {args.timeout:g} s", file=sys.stderr)
            return 1
        if stop.wait(args.interval):
            return 0
