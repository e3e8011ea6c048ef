"""`kminer models`: the model market, headless.

    kminer models list|show|buy|try|list-model [--json]

`list` shows the listed models with their checked cards (metrics, classes, price, seller);
`buy` shows the exact NTK price and the most the network fee can be, asks, then buys;
`try` runs a bought model on photos in the sandboxed worker and writes annotated copies;
`list-model` puts a model folder (model_card.json + weights) up for sale. Network, account
and password options are those of `kminer wallet`. Prices are in NTK (e.g. 12.5).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.amounts import eth_text, ntk_text
from app.errors import UserError
from cli.shared import user_errors, add_wallet_options, emit, open_wallet

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="model market: list, show, buy, try and sell trained models",
                       description="Trained models sold for NTK: buy one, then run it on your photos.")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    ls = msub.add_parser("list", help="models for sale (card checked against its on-chain hash)")
    add_wallet_options(ls)
    ls.add_argument("--all", action="store_true", help="also listings no longer for sale")
    ls.set_defaults(handler=cmd_list)

    sh = msub.add_parser("show", help="one listing in full")
    add_wallet_options(sh)
    sh.add_argument("listing_id", type=int, metavar="ID")
    sh.set_defaults(handler=cmd_show)

    b = msub.add_parser("buy", help="buy a model (shows the NTK price and network fee first)")
    add_wallet_options(b)
    b.add_argument("listing_id", type=int, metavar="ID")
    b.add_argument("--yes", action="store_true", help="buy without asking (for scripts)")
    b.set_defaults(handler=cmd_buy)

    t = msub.add_parser("try", help="run a bought model on photos (sandboxed worker); annotated copies to --out")
    add_wallet_options(t)
    t.add_argument("listing_id", type=int, metavar="ID")
    t.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="photos, or folders of photos")
    t.add_argument("--out", type=Path, metavar="DIR", help="save the annotated images here")
    t.add_argument("--score-threshold", type=float, default=0.3, help="drop detections below this score (0-1)")
    t.add_argument("--sandbox", choices=["strict", "basic"], help="override the sandbox setting")
    t.set_defaults(handler=cmd_try)

    lm = msub.add_parser("list-model", help="put a model folder up for sale")
    add_wallet_options(lm)
    lm.add_argument("folder", type=Path, metavar="FOLDER", help="model folder (model_card.json + weights)")
    lm.add_argument("--price", required=True, help="price in NTK")
    lm.add_argument("--uri", help="where buyers fetch the card, weights beside it (default: this folder's file URI)")
    lm.add_argument("--p2p", action="store_true",
                    help="sell it peer to peer: the card in the open, the weights sealed, the key only to buyers "
                         "(this machine serves it while the app, the agent or `models serve` runs)")
    lm.set_defaults(handler=cmd_list_model)

    fe = msub.add_parser("fetch", help="fetch a bought model into your models folder (peer to peer or by URI)")
    add_wallet_options(fe)
    fe.add_argument("listing_id", type=int)
    fe.set_defaults(handler=cmd_fetch)

    sv = msub.add_parser("serve", help="serve the models you sell peer to peer and give buyers their keys (Ctrl-C stops)")
    add_wallet_options(sv)
    sv.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between passes (default 2)")
    sv.set_defaults(handler=cmd_serve)


def _call(fn):
    """Run fn, turning model market and wallet errors into one-line UserErrors."""
    from app.models import ModelError

    try:
        return user_errors(fn)
    except ModelError as e:
        raise UserError(str(e)) from None


def _service(svc):
    """The model market; closed when the command ends (it may hold a transport peer's threads)."""
    import atexit

    from app.models import ModelService

    ms = ModelService(svc.ctx, svc)
    atexit.register(ms.close)
    return ms


def _line(lst) -> str:
    head = lst.headline
    metric = f"{head[0]} {head[1]:.3f}" if head else "no metrics"
    badge = " [owned]" if lst.owned and not lst.mine else " [yours]" if lst.mine else ""
    state = "" if lst.card_ok else f" (unusable: {lst.problem})"
    made = {"verified": "", "copied": " [COPIED]"}.get(lst.provenance, " [unverified]")  # app.models.provenance
    return f"#{lst.listing_id} {lst.name}: {lst.task or '?'}, {metric}, {ntk_text(lst.price_wei)}{badge}{made}{state}"


def cmd_list(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        items = _call(lambda: _service(svc).listings(include_inactive=args.all))
        emit(args, items, "\n".join(_line(i) for i in items) or "no models for sale")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        lst = _call(lambda: _service(svc).listing(args.listing_id))
        lines = [_line(lst), f"  seller {lst.owner}: {lst.seller.summary if lst.seller else '?'}",
                 f"  {lst.provenance}: {lst.provenance_note}", f"  card {lst.uri} ({lst.card_hash})"]
        if lst.card_ok:
            lines += [f"  {lst.arch}, input {lst.input_size[0]}x{lst.input_size[1]}, "
                      f"{lst.num_params or '?'} parameters, weights {lst.weights_bytes or '?'} bytes",
                      "  " + ", ".join(f"{k} {v:.3f}" for k, v in lst.metrics),
                      f"  classes: {', '.join(lst.classes)}"]
        emit(args, lst, "\n".join(lines))
    return 0


def cmd_buy(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        ms = _service(svc)
        q = _call(lambda: ms.quote(args.listing_id))
        if q.already_owned:
            raise UserError(f"you already own model #{q.listing_id} ({q.name}); try it with `kminer models try`")
        if not q.enough_ntk:
            raise UserError(f"not enough NTK: {q.name} costs {ntk_text(q.price_wei)}, "
                            f"you have {ntk_text(q.ntk_balance_wei)}")
        text = (f"Buy {q.name} (#{q.listing_id}) for {ntk_text(q.price_wei)}; "
                f"network fee at most {eth_text(q.fee_max_wei)} ({q.transactions} transaction"
                f"{'s' if q.transactions > 1 else ''})")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserError("buying needs a confirmation: add --yes (no terminal to ask on)")
            print(text)
            if input("Buy? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing bought")
                return 1
        p = _call(lambda: ms.buy(args.listing_id, max_price_wei=q.price_wei))
        emit(args, {"quote": q, "purchase": p},
             f"bought {q.name} (#{q.listing_id}) for {ntk_text(p.price_wei)}, network fee "
             f"{eth_text(p.fee_wei)} (tx {p.tx_hashes[-1]})")
    return 0


def cmd_try(args: argparse.Namespace) -> int:
    if not 0 <= args.score_threshold <= 1:
        raise UserError("--score-threshold must be between 0 and 1")
    from app.models import ModelService

    with open_wallet(args) as svc:
        ms = _service(svc)
        files = _call(lambda: ModelService.check_images(args.images))
        model = _call(lambda: ms.fetch(args.listing_id))
    if not args.json:
        print(f"running {model.name} on {len(files)} photo{'s' if len(files) != 1 else ''} in the sandbox...",
              file=sys.stderr)
    res = _call(lambda: ms.try_model(model, files, score_threshold=args.score_threshold, sandbox=args.sandbox))
    saved = ModelService.save_annotated(res, args.out) if args.out else [im.annotated for im in res.images]
    lines = []
    for im, path in zip(res.images, saved):
        boxes = [d for d in im.detections if d.box is not None]
        if boxes:
            lines.append(f"{im.source.name} ({im.width}x{im.height}): {len(boxes)} detections -> {path}")
            lines += [f"  {d.label:16} {d.score:.2f}  [{', '.join(f'{v:.0f}' for v in d.box)}]" for d in boxes]
        else:
            lines.append(f"{im.source.name}: " + (", ".join(f"{d.label} {d.score:.2f}" for d in im.detections)
                                                  or "nothing found") + f" -> {path}")
    lines.append(f"({res.run_s:.1f} s in the {res.sandbox} sandbox)")
    emit(args, {"model": res.model, "run_s": res.run_s, "sandbox": res.sandbox,
                "images": [dict(source=str(im.source), annotated=str(p), width=im.width, height=im.height,
                                detections=[{"class": d.label, "class_id": d.class_id, "score": d.score,
                                             "box": list(d.box) if d.box else None} for d in im.detections])
                           for im, p in zip(res.images, saved)]},
         "\n".join(lines))
    return 0


def cmd_list_model(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    price = user_errors(lambda: parse_units(args.price))
    with open_wallet(args) as svc:
        lid = _call(lambda: _service(svc).list_model(args.folder, price_wei=price, uri=args.uri, p2p=args.p2p))
        emit(args, {"listing_id": lid, "price_wei": price}, f"listed as model #{lid} for {args.price} NTK"
             + ("; buyers fetch it from this machine while `kminer models serve` (or the app, or the agent) runs"
                if args.p2p else ""))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        model = _call(lambda: _service(svc).fetch(args.listing_id))
        emit(args, {"listing_id": model.listing_id, "folder": str(model.folder), "weights_sha256": model.weights_sha256},
             f"{model.name} (#{model.listing_id}) is in {model.folder}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading
    import time

    if args.interval <= 0:
        raise UserError("--interval must be positive")
    stop = threading.Event()
    old = {sg: signal.signal(sg, lambda *_: stop.set()) for sg in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_wallet(args) as svc:
            ms = _service(svc)
            peer = _call(ms.peer)
            print(f"serving on {', '.join(peer.node.config.advertise)} (keys on {', '.join(peer.node.config.key_servers)})",
                  flush=True)
            while not stop.is_set():
                try:
                    events = _call(ms.serve_step)
                except UserError as e:
                    events = [f"pass failed: {e}"]
                for e in events:
                    print(time.strftime("%H:%M:%S ") + e, flush=True)
                stop.wait(args.interval)
    finally:
        for sg, h in old.items():
            signal.signal(sg, h)
    return 0
