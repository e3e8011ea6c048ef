"""`kminer order render|train` and `kminer order watch` on the order market (the default wherever
the network has one, the local chain and devnets included; `--p2p` asks for it): orders
moved peer to peer (app.orders). One escrow per order; shards are claimed, delivered, sampled
and paid with signatures; results travel sealed between the two machines, no shared folder.

While an order is open the buyer's machine serves its order desk and inputs: `render` posts
and, unless --no-watch, keeps serving until the order is done (like `watch`). `train --dataset
ORDER|DIR` keeps a share of the images back (or --holdout) to check the model on
before paying. `fetch p2p:N --out DIR` merges the verified, unsealed shards into one dataset or
copies a train order's verified model folder (cli/commands/order_markets.py).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

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


def _confirm(r, args: argparse.Namespace, *, shards: int, reward: int, note: str = "") -> int:
    """Say what posting costs (and `note`) and ask (unless --yes); the network fee estimate in wei."""
    from app.p2p_orders import posting_cost

    cost, fee = user_errors(lambda: posting_cost(r.om.chain, shards=shards, reward_each_wei=reward))
    text = "\n".join(f"  {x.label}: {x.text}" for x in cost.lines)
    if not args.json:
        print(f"{cost.title}\n{text}" + (f"\n{note}" if note else ""), file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError("posting needs a confirmation: add --yes (no terminal to ask on)")
        if input("Post it? [y/N] ").strip().lower() not in ("y", "yes"):
            raise UserError("not posted")
    return fee


def _posted(r, args: argparse.Namespace, oid: int) -> int:
    if args.no_watch:
        print(f"serve it (miners need your desk) with: kminer order watch; then: kminer order fetch p2p:{oid} "
              "--out DIR", file=sys.stderr)
        return 0
    return _watch(r, args)


def _say_market(args: argparse.Namespace, say: bool) -> None:
    """Once the input is checked: the order goes to the order market because it is the default."""
    if say and not args.json:
        print("posting on the order market (peer to peer; --job-market for the job market)", file=sys.stderr)


def cmd_render_p2p(args: argparse.Namespace, *, reward: int, deadline_s: int, review_s: int, size,
                   say_market: bool = False) -> int:
    from jobs.render.spec import SceneError, load_scene

    try:
        scene = load_scene(args.scene)
    except SceneError as e:
        raise UserError(f"scene: {e}") from None
    if not 1 <= args.shards <= min(128, args.count):
        raise UserError("--shards must be 1 to 128 and at most --count")
    _check_samplable(scene, args, size)
    with _runner(args) as r:
        _say_market(args, say_market)
        fee = _confirm(r, args, shards=args.shards, reward=reward)
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
        return _posted(r, args, oid)


def _check_samplable(scene, args: argparse.Namespace, size) -> None:
    """Shards too small to be sampled before payment: the one-line reason before any cost is
    shown or anything opened (app.orders.sampling; the buyer and miners refuse them too)."""
    from app.orders.render import render_order
    from app.orders.sampling import too_small_to_sample
    from jobs.render.spec import SceneError

    try:
        job, _ = render_order(scene, count=args.count, seed=args.seed, size=size)
    except (SceneError, ValueError) as e:
        raise UserError(f"scene: {e}") from None
    if why := too_small_to_sample(job, args.shards):
        raise UserError(f"{why}: use fewer --shards or more --count")


def _data_dirs(r, values: list[str], what: str) -> list[Path]:
    """Each ORDER|DIR as dataset folders: a finished order-market render order's verified shards, or a folder."""
    from app.p2p_orders import result_dirs

    out: list[Path] = []
    for v in values:
        p = Path(v)
        if p.is_dir():
            out.append(p)
        elif v.isdigit() or (v.startswith("p2p:") and v[4:].isdigit()):
            v = v.removeprefix("p2p:")
            try:
                if r.order_kind(int(v)) != "render":
                    raise UserError(f"{what} {v}: order {v} is not a render order")
                out += result_dirs(r.buyer.home, int(v))
            except ValueError as e:
                raise UserError(f"{what} {v}: {e}") from None
        else:
            raise UserError(f"{what} {v}: no such folder, and not an order number")
    return out


def cmd_train_p2p(args: argparse.Namespace, *, reward: int, deadline_s: int, review_s: int, params: dict,
                  say_market: bool = False) -> int:
    if args.data:
        raise UserError("the order market trains on --dataset ORDER|DIR (--data names job-market orders: --job-market)")
    if not args.dataset:
        raise UserError("name the data to train on: --dataset ORDER|DIR (repeatable)")
    if not 0 < args.holdout_share < 1:
        raise UserError("--holdout-share must be between 0 and 1")
    if args.tolerance is not None and not 0 <= args.tolerance <= 1:
        raise UserError("--tolerance must be between 0 and 1")
    with _runner(args) as r:
        _say_market(args, say_market)
        data = _data_dirs(r, args.dataset, "--dataset")
        held = _data_dirs(r, [args.holdout], "--holdout") if args.holdout else None
        tolerance, check = _check_terms(args, data, held, params)
        fee = _confirm(r, args, shards=1, reward=reward, note=check)
        try:
            oid = r.post_train(data, params=params, reward_wei=reward, deadline_s=deadline_s, review_window_s=review_s,
                               holdout=held, holdout_fraction=args.holdout_share, tolerance=tolerance,
                               min_metric=args.min_metric)
        except ValueError as e:
            raise UserError(str(e)) from None
        emit(args, {"market": "p2p", "ref": f"p2p:{oid}", "order_id": oid, "desk": r.buyer.desk_url,
                    "escrow_wei": str(reward), "fee_wei_estimate": str(fee), "tolerance": tolerance},
             f"order {oid} posted on the order market: a model trained on {', '.join(args.dataset)}, "
             f"{ntk_text(reward)} escrowed (fee ≈ {eth_text(fee, 6)}); desk {r.buyer.desk_url}")
        return _posted(r, args, oid)


def _check_terms(args: argparse.Namespace, data: list[Path], held: list[Path] | None, params: dict) -> tuple[float, str]:
    """The tolerance the held-out check will use (--tolerance, else the default for the held-out
    size: app.orders.train.planned_tolerance) and the line that says so before posting."""
    from app.orders.train import planned_tolerance, train_terms
    from jobs.train.subset import DatasetError, coco_summary

    try:
        images = coco_summary(data)[0]
        n_held = coco_summary(held)[0] if held else None
    except DatasetError as e:
        raise UserError(f"not a dataset: {str(e).splitlines()[0] if str(e) else e}") from None
    if images < 2:
        raise UserError(f"the data holds {images} image(s): too few to train on and hold some out")
    planned, n_held, _ = planned_tolerance(images, params, held_out=n_held, holdout_fraction=args.holdout_share)
    tolerance = planned if args.tolerance is None else args.tolerance
    try:  # no least metric, or so few held-out images that the default tolerance says little: refused here
        text = train_terms(n_held, tolerance, chosen=args.tolerance is not None, min_metric=args.min_metric)
    except ValueError as e:
        raise UserError(f"{e} (--holdout-share, --holdout or --tolerance)" if args.tolerance is None
                        and args.min_metric is not None else str(e)) from None
    return tolerance, f"  held-out check: {text}"


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
