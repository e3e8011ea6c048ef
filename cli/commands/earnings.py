"""`kminer earnings`: what each device earned, against mining Ethash coins.

    kminer earnings [--days N] [--json]          per device per day: NTK, USD, energy; the
                                                 Ethash comparison with the figures' dates
    kminer earnings compare [--gpu NAME] [--watts W] [--json]
                                                 coin mining alone for a GPU (default: the
                                                 GPUs found here)
    kminer earnings refresh-network [--url URL]  fetch Ethash network figures (JSON) into the
                                                 data folder; the bundled file is the fallback

NTK amounts are exact (wei, shown as NTK); USD figures are estimates at the prices shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.amounts import ntk_text
from app.context import AppContext
from app.errors import UserError

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("earnings", help="NTK earned per device and day, against mining Ethash coins",
                       description="NTK earned per device per day (from the ledger), energy and its cost, "
                                   "and what the same GPU would net mining ETC now or ETH in its last PoW months.")
    p.add_argument("--days", type=_days, default=7, metavar="N", help="how many days back, today included (default 7)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=show)
    acts = p.add_subparsers(dest="earnings_action", metavar="ACTION")
    c = acts.add_parser("compare", help="coin mining alone for a GPU",
                        description="Expected coins/day, USD gross, pool fee, power cost and net per day mining "
                                    "ETC (now) and ETH (historical) with a GPU, from the bundled hashrate table.")
    c.add_argument("--gpu", metavar="NAME", help='GPU model, e.g. "RTX 3070" (default: the GPUs found here)')
    c.add_argument("--watts", type=_watts, metavar="W", help="the card's power while mining (default: the table's)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c.set_defaults(handler=compare)
    r = acts.add_parser("refresh-network", help="fetch Ethash network figures from a JSON endpoint",
                        description="Fetch network figures (the layout of resources/data/ethash_networks.json), "
                                    "check them and keep them in the data folder.")
    r.add_argument("--url", help="the endpoint (default: settings earnings.network_feed_url)")
    r.set_defaults(handler=refresh_network)


def _days(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {v!r}") from None
    if not 1 <= n <= 3660:
        raise argparse.ArgumentTypeError("days must be between 1 and 3660")
    return n


def _watts(v: str) -> float:
    try:
        w = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of watts: {v!r}") from None
    if not 0 < w <= 5000:
        raise argparse.ArgumentTypeError("watts must be between 0 and 5000")
    return w


def discover_devices() -> tuple[Any, ...]:
    """The devices of this machine (tests replace this to pass an NVML stand-in)."""
    from gpu.devices import discover

    return discover().devices


def _service() -> Any:
    from app.earnings import EarningsService

    ctx = AppContext.open()  # cli.main prints the settings notices
    return EarningsService(ctx)


def _usd(v: float) -> str:
    """USD for display: cents, or tenths of a cent below $10 (a GPU's day of ETC is cents)."""
    return f"{'-' if v < 0 else ''}${abs(v):,.{3 if abs(v) < 10 else 2}f}"


def _coin_lines(cmp: Any, indent: str = "  ") -> list[str]:
    if not cmp.available:
        return [f"{indent}Ethash comparison: none ({cmp.reason})"]
    g = cmp.gpu
    lines = [f"{indent}Ethash: {g.name} {g.mh_s:g} MH/s at {cmp.watts:g} W (table: {g.source.split(';')[0]})"]
    for key, c in cmp.networks.items():
        d, n = c.day, c.network
        tag = " [historical]" if n.historical and "historical" not in n.label.lower() else ""
        lines.append(f"{indent}  {n.label}{tag}, figures as of {n.as_of}: {d.coins:.6f} {n.coin}/day x "
                     f"${c.price_usd:g} = {_usd(d.gross_usd)} gross, pool {_usd(d.pool_fee_usd)}, "
                     f"power {d.energy_kwh:.2f} kWh = {_usd(d.power_cost_usd)}, net {_usd(d.net_usd)}/day")
        if n.estimates:
            lines.append(f"{indent}    (estimated: {', '.join(sorted(n.estimates))}; the data file says on what basis)")
    return lines


def show(args: argparse.Namespace) -> int:
    svc = _service()
    try:
        report = svc.report(discover_devices(), days=args.days)
    finally:
        svc.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    p = report.prices
    print(f"Earnings {report.since} .. {report.until} ({report.period_days} days). NTK ${p.ntk_usd:g}, "
          f"electricity ${p.electricity_usd_per_kwh:g}/kWh (from {p.source}).")
    if p.message:
        print(f"kminer: price feed: {p.message}", file=sys.stderr)
    nd = report.network_data
    print(f"Network figures: {nd.origin}.")
    if nd.message:
        print(f"kminer: {nd.message}", file=sys.stderr)
    bm, bt = report.by_market, report.by_market_total
    print(f"Paid by market: job market {ntk_text(bm['job'])}, order market {ntk_text(bm['order'])} in this period "
          f"(all time {ntk_text(bt['job'])} and {ntk_text(bt['order'])}).")
    for d in report.devices:
        print(f"\n{d.id or d.key}  {d.name}")
        if not d.days:
            print("  no payments or energy readings in this period")
        for day in d.days:
            print(f"  {day.day}  {ntk_text(day.ntk_wei)} = {_usd(day.ntk_usd)}  energy {day.energy_wh:.1f} Wh = "
                  f"{_usd(day.energy_usd)}  net {_usd(day.net_usd)}")
        print(f"  period {ntk_text(d.period_wei)}, all time {ntk_text(d.cumulative_wei)}; "
              f"knowledge mining net {_usd(d.net_usd_per_day)}/day on average")
        print("\n".join(_coin_lines(d.coin)))
        for key, (r, why) in d.ratios().items():
            label = d.coin.networks[key].network.label
            text = f"{r:.2f} : 1" if r is not None else f"n/a ({why})"
            print(f"  knowledge : coin mining vs {label}: {text}")
    return 0


def compare(args: argparse.Namespace) -> int:
    svc = _service()
    try:
        if args.gpu:
            results = [svc.compare_gpu(args.gpu, watts=args.watts)]
            if not results[0].available:
                raise UserError(results[0].reason)
        else:
            gpus = [d for d in discover_devices() if d.kind != "cpu"]
            if not gpus:
                raise UserError('no GPU found here; name one with --gpu "RTX 3070"')
            results = [svc.compare_device(d, watts=args.watts) for d in gpus]
        prices = svc.prices()
    finally:
        svc.close()
    if args.json:
        print(json.dumps({"prices": prices.to_json(), "gpus": [r.to_json() for r in results]}, indent=2))
        return 0
    print(f"Electricity ${prices.electricity_usd_per_kwh:g}/kWh (from {prices.source}), "
          f"pool fee {svc.ctx.settings.earnings.pool_fee:.1%}.")
    if prices.message:
        print(f"kminer: price feed: {prices.message}", file=sys.stderr)
    for r in results:
        print(f"{r.query}:")
        print("\n".join(_coin_lines(r)))
    return 0


def refresh_network(args: argparse.Namespace) -> int:
    from app.earnings import FeedError

    svc = _service()
    try:
        nd = svc.refresh_network(args.url)
    except FeedError as e:
        raise UserError(f"{e}; network figures unchanged") from None
    finally:
        svc.close()
    dates = ", ".join(f"{n.coin} as of {n.as_of}" for n in nd.networks.values())
    print(f"Network figures saved to {nd.path} ({dates}).")
    return 0
