"""`kminer market`: the job market, buyer and miner sides, headless.

    kminer market list|show|post|claim|submit|accept|reject|release|refund|reputation|deploy|use|networks [--json]

Amounts are given in NTK (e.g. 12.5) and handled in base units; hashes are 32-byte hex.
Network, account and password options are those of `kminer wallet`.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from typing import Any

from app.amounts import ntk_text
from app.context import AppContext
from app.errors import UserError
from cli.shared import user_errors, add_wallet_options, emit, open_wallet

# The domain this command drives is imported inside its handlers (see cli/commands/__init__.py).


def register(sub: Any) -> None:
    p = sub.add_parser("market", help="job market: post, claim, submit, accept, reject, release, refund",
                       description="Escrowed render/train jobs paid in NTK: the buyer and miner sides.")
    msub = p.add_subparsers(dest="market_command", metavar="ACTION", required=True)

    ls = msub.add_parser("list", help="list jobs")
    add_wallet_options(ls)
    ls.add_argument("--status", choices=["open", "claimed", "submitted", "accepted", "rejected", "released", "refunded"])
    ls.add_argument("--first", type=int, default=1, help="first job id")
    ls.add_argument("--limit", type=int, default=100)
    ls.set_defaults(handler=cmd_list)

    sh = msub.add_parser("show", help="one job in full")
    add_wallet_options(sh)
    sh.add_argument("job_id", type=int)
    sh.set_defaults(handler=cmd_show)

    po = msub.add_parser("post", help="post a job (the reward is escrowed)")
    add_wallet_options(po)
    po.add_argument("--kind", required=True, choices=["render", "train", "infer", "verify"])
    po.add_argument("--spec-hash", required=True, help="sha256 of the job spec (64 hex digits)")
    po.add_argument("--spec-uri", required=True, help="where miners fetch the spec")
    po.add_argument("--reward", required=True, help="reward in NTK (per shard with --shards)")
    po.add_argument("--deadline-hours", type=float, default=24.0, help="result due within this many hours")
    po.add_argument("--review-hours", type=float, default=24.0, help="how long you have to accept or reject a result")
    po.add_argument("--stake", default="0", help="NTK a miner deposits to claim (back on delivery)")
    po.add_argument("--shards", type=int, default=1, help="post N shard jobs in one transaction "
                                                          "(spec URI gets #shard=I, hash is per shard: spec-hash+I)")
    po.set_defaults(handler=cmd_post)

    for name, helptext in (("claim", "claim an open job (miner)"), ("accept", "accept a result: pay the miner (buyer)"),
                           ("reject", "reject a result within the review window (buyer)"),
                           ("release", "after the review window, pay yourself (miner)"),
                           ("refund", "after the deadline without a result, take the escrow back (buyer)")):
        q = msub.add_parser(name, help=helptext)
        add_wallet_options(q)
        q.add_argument("job_id", type=int)
        q.set_defaults(handler=cmd_action, action=name)

    su = msub.add_parser("submit", help="submit a result before the deadline (miner)")
    add_wallet_options(su)
    su.add_argument("job_id", type=int)
    su.add_argument("--result-hash", required=True, help="sha256 of the result (64 hex digits)")
    su.add_argument("--result-uri", required=True)
    su.set_defaults(handler=cmd_submit)

    rp = msub.add_parser("reputation", help="completed / rejected / expired counters of an address")
    add_wallet_options(rp)
    rp.add_argument("address", nargs="?")
    rp.set_defaults(handler=cmd_reputation)

    us = msub.add_parser("use", help="use a market someone else deployed on this network (addresses from its deployer)")
    add_wallet_options(us)
    us.add_argument("--job-market", required=True, metavar="ADDRESS")
    us.add_argument("--model-market", required=True, metavar="ADDRESS")
    us.add_argument("--order-market", metavar="ADDRESS", help="the OrderMarket (orders settled by signatures), if any")
    us.add_argument("--from-block", type=int, default=0, help="block the market was deployed in (history starts there)")
    us.set_defaults(handler=cmd_use)

    fe = msub.add_parser("fees", help="what an order costs in network fees on each network (per shard, and as a "
                                      "share of its reward)")
    fe.add_argument("--network", action="append", metavar="NAME", help="only this network; repeatable")
    fe.add_argument("--shards", type=int, default=4, help="shards of the order (default 4, the app's default order)")
    fe.add_argument("--reward", default="10", help="NTK paid per shard (default 10)")
    fe.add_argument("--json", action="store_true", help="print JSON")
    fe.set_defaults(handler=cmd_fees)

    dp = msub.add_parser("deploy", help="deploy the markets on a network (our test NTK on test networks)",
                         description="Deploy JobMarket, ModelMarket and OrderMarket for whoever runs a market on "
                                     "NETWORK: with our own test NTK on test networks, paying in a token you confirm "
                                     "(--token) on main networks. Shows the estimated cost and asks before sending "
                                     "(--yes: do not ask). Writes the deployments file the app reads.")
    add_wallet_options(dp)
    dp.add_argument("--token", metavar="ADDRESS",
                    help="the ERC-20 the markets pay in (required on main networks: no bridged NTK is official)")
    dp.add_argument("--yes", action="store_true", help="send without asking (the estimate is still shown)")
    dp.add_argument("--coin-usd", type=float, metavar="PRICE",
                    help="price of the network's coin in USD for the estimate (default: the bundled reference)")
    dp.set_defaults(handler=cmd_deploy)

    nw = msub.add_parser("networks", help="every network: chain id, test or main, explorer, L1 data fee, market known",
                         description="The network presets and whether a market is known on each (the project's list "
                                     "and the deployment files in your data folder): where real jobs come from.")
    nw.add_argument("--json", action="store_true", help="print the result as JSON")
    nw.set_defaults(handler=cmd_networks)


def _job_line(j) -> str:
    miner = f", miner {j.miner}" if j.miner else ""
    due = time.strftime("%Y-%m-%d %H:%M", time.localtime(j.deadline))
    return f"#{j.id} {j.kind} {j.status.name.lower()} reward {ntk_text(j.reward_wei)}, due {due}{miner}"


def cmd_list(args: argparse.Namespace) -> int:
    from wallet.market import JobStatus  # deferred: loads web3 (~1.5 s)

    with open_wallet(args) as svc:
        m = user_errors(svc.market)
        status = JobStatus[args.status.upper()] if args.status else None
        jobs = user_errors(lambda: m.jobs(status=status, first=args.first, limit=args.limit))
        emit(args, jobs, "\n".join(_job_line(j) for j in jobs) or "no jobs")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        j = user_errors(lambda: svc.market().job(args.job_id))
        emit(args, j, _job_line(j) + f"\n  spec {j.spec_uri} ({j.spec_hash})"
             + (f"\n  result {j.result_uri} ({j.result_hash})" if j.result_hash else ""))
    return 0


def cmd_post(args: argparse.Namespace) -> int:
    from wallet.token import parse_units

    reward, stake = user_errors(lambda: parse_units(args.reward)), user_errors(lambda: parse_units(args.stake))
    if args.shards < 1:
        raise UserError("--shards must be at least 1")
    if args.deadline_hours <= 0 or args.review_hours <= 0:
        raise UserError("--deadline-hours and --review-hours must be positive")
    with open_wallet(args) as svc:
        m = user_errors(svc.market)
        me = user_errors(svc.signer)
        deadline = int(max(time.time(), svc.chain.latest_timestamp()) + args.deadline_hours * 3600)
        window = int(args.review_hours * 3600)
        if args.shards == 1:
            job_id, res = user_errors(lambda: m.post(me, kind=args.kind, spec_hash=args.spec_hash, spec_uri=args.spec_uri,
                                               reward_wei=reward, deadline=deadline, review_window_s=window, stake_wei=stake))
            ids = [job_id]
        else:
            base = user_errors(lambda: int(args.spec_hash.removeprefix("0x"), 16))
            hashes = ["0x" + f"{(base + i) % 2**256:064x}" for i in range(args.shards)]
            uris = [f"{args.spec_uri}#shard={i}" for i in range(args.shards)]
            ids, txs = user_errors(lambda: m.post_shards(me, kind=args.kind, spec_hashes=hashes, spec_uris=uris,
                                                   reward_each_wei=reward, deadline=deadline, review_window_s=window,
                                                   stake_wei=stake))
            res = txs[-1]
        emit(args, {"job_ids": ids, "tx_hash": res.tx_hash, "block": res.block_number},
             f"posted job{'s' if len(ids) > 1 else ''} {', '.join(f'#{i}' for i in ids)} (tx {res.tx_hash})")
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        m = user_errors(svc.market)
        me = user_errors(svc.signer)
        res = user_errors(lambda: getattr(m, args.action)(me, args.job_id))
        j = user_errors(lambda: m.job(args.job_id))
        emit(args, {"job": j, "tx_hash": res.tx_hash, "block": res.block_number},
             f"{args.action}: {_job_line(j)} (tx {res.tx_hash})")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        m = user_errors(svc.market)
        me = user_errors(svc.signer)
        res = user_errors(lambda: m.submit(me, args.job_id, args.result_hash, args.result_uri))
        emit(args, {"job_id": args.job_id, "tx_hash": res.tx_hash, "block": res.block_number},
             f"submitted the result of job #{args.job_id} (tx {res.tx_hash})")
    return 0


def cmd_reputation(args: argparse.Namespace) -> int:
    with open_wallet(args) as svc:
        addr = args.address or user_errors(lambda: svc.address)
        r = user_errors(lambda: svc.market().reputation(addr))
        emit(args, r, f"{r.address}: {r.completed} completed, {r.rejected} rejected, {r.expired} expired")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    import sys
    from dataclasses import asdict

    from app.market_deploy import deploy_markets, plan_deploy

    if args.coin_usd is not None and not 0 <= args.coin_usd < 1e9:
        raise UserError("--coin-usd must be a price of zero or more")
    with open_wallet(args) as svc:
        if svc.network.embedded:
            d = user_errors(svc.deployment)
            emit(args, d, f"the local chain has its own market (deployed on first start)\n{_deployment_text(d)}")
            return 0
        plan = user_errors(lambda: plan_deploy(svc, token=args.token, coin_usd=args.coin_usd))
        print(plan.text(), file=sys.stderr if args.json else sys.stdout, flush=True)
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserError("nothing was sent: add --yes to deploy without a terminal to confirm on")
            out = sys.stderr if args.json else sys.stdout  # --json: stdout carries only the JSON
            print("Send these transactions? [y/N] ", end="", file=out, flush=True)
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                raise UserError("nothing was sent (not confirmed)")
        d, path = user_errors(lambda: deploy_markets(svc, plan))
        emit(args, {**asdict(d), "deployments_file": str(path), "estimate": plan.as_json()},
             f"{_deployment_text(d)}\nwritten to {path}")
    return 0


def _deployment_text(d) -> str:
    return (f"NTK {d.ntk}\nJobMarket {d.job_market}\nModelMarket {d.model_market}\nOrderMarket {d.order_market}\n"
            f"(chain {d.chain_id}, from block {d.block})")


def cmd_networks(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from app.market_networks import market_networks, real_jobs_summary

    ctx = AppContext.open()
    rows = market_networks(ctx.paths.chain_dir)
    summary = real_jobs_summary(rows)
    if args.json:
        emit(args, {"networks": [{**asdict(r), "has_market": r.has_market, "market_text": r.market_text,
                                  "jobs": r.jobs_text} for r in rows],
                    "where_real_jobs_come_from": summary}, "")
        return 0
    head = ("NETWORK", "CHAIN ID", "KIND", "LAYER", "L1 DATA FEE", "MARKET", "EXPLORER")
    table = [head] + [(r.name, str(r.chain_id) if r.chain_id is not None else "(node's)",
                       "test" if r.testnet else "main", r.layer,
                       {"op-stack": "yes (OP-stack)", "in-gas": "in gas"}.get(r.l1_fee or "", "no"),
                       r.market if r.market != "embedded" else "local only", r.explorer or "-") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    for r in rows:
        if r.has_market and not r.embedded:
            lines.append(f"{r.name}: market {r.market_text}")
        if r.problem:
            lines.append(f"{r.name}: {r.problem}")
    print("\n".join(lines) + "\n\n" + textwrap.fill(summary, 100))
    return 0


def cmd_use(args: argparse.Namespace) -> int:
    from wallet import artifacts
    from wallet.deploy import Deployment, save_deployment

    with open_wallet(args) as svc:
        chain = svc.chain if not svc.network.embedded else None
        if chain is None:
            raise UserError("the local chain has its own market; `use` is for devnet and public networks")
        w3 = chain.w3
        addrs = {}
        pairs = [("job market", args.job_market), ("model market", args.model_market)]
        if args.order_market:
            pairs.append(("order market", args.order_market))
        for name, value in pairs:
            if not w3.is_address(value):
                raise UserError(f"{name} address {value!r} is not an Ethereum address")
            addrs[name] = w3.to_checksum_address(value)
            if not user_errors(lambda: chain.read(lambda: w3.eth.get_code(addrs[name]))):
                raise UserError(f"no contract at {addrs[name]} on chain {chain.chain_id}")
        jm = w3.eth.contract(address=addrs["job market"], abi=artifacts.load("JobMarket").abi_list())
        mm = w3.eth.contract(address=addrs["model market"], abi=artifacts.load("ModelMarket").abi_list())
        ntk = user_errors(lambda: chain.call(jm.functions.token(), what="reading the market's token"))
        if user_errors(lambda: chain.call(mm.functions.token(), what="reading the model market's token")) != ntk:
            raise UserError("the two markets are paid in different tokens; check the addresses")
        if args.order_market:
            om = w3.eth.contract(address=addrs["order market"], abi=artifacts.load("OrderMarket").abi_list())
            if user_errors(lambda: chain.call(om.functions.token(), what="reading the order market's token")) != ntk:
                raise UserError("the order market is paid in another token than the job market; check the addresses")
        d = Deployment(chain_id=chain.chain_id, ntk=ntk, job_market=addrs["job market"],
                       model_market=addrs["model market"], block=args.from_block, deployer="",
                       order_market=addrs.get("order market"))
        save_deployment(svc.ctx.paths.chain_dir, d)
        emit(args, d, f"using JobMarket {d.job_market} (NTK {d.ntk}) on chain {d.chain_id}")
    return 0


def cmd_fees(args: argparse.Namespace) -> int:
    from app.context import AppContext
    from app.order_fees import order_fee
    from wallet.networks import NETWORKS, get_network
    from wallet.token import parse_units

    if not 1 <= args.shards <= 128:
        raise UserError("--shards must be 1 to 128")
    reward = user_errors(lambda: parse_units(args.reward))
    ntk_usd = AppContext.open().settings.earnings.ntk_usd
    nets = [user_errors(lambda n=n: get_network(n)) for n in args.network] if args.network else \
        [n for n in NETWORKS.values() if n.typical_base_fee_gwei is not None]
    rows = [order_fee(n, shards=args.shards, reward_each_wei=reward, ntk_usd=ntk_usd) for n in nets]
    lines = [f"an order of {args.shards} shard(s) at {args.reward} NTK each (NTK at ${ntk_usd:g}); fees per shard on "
             "the happy path (post + a redeem carrying 10 orders), from measured gas and reference fees:"]
    for r in rows:
        usd = f" ≈ ${r.per_shard_usd:.4f}" if r.per_shard_usd is not None else ""
        share = f", {100 * r.share:.2f} % of the reward" if r.share is not None else ""
        silent = f"; a silent buyer costs the miner {r.silent_buyer_wei / 1e18:.8f} {r.coin} more"
        lines.append(f"  {r.network:18} {r.per_shard_wei / 1e18:.8f} {r.coin}{usd}{share}{silent}")
    missing = [n.name for n in NETWORKS.values() if n.typical_base_fee_gwei is None and not n.embedded
               and n.chain_id is not None] if not args.network else []
    if missing:
        lines.append(f"  (no reference fee stored for {', '.join(missing)}: connect to one, and posting shows its "
                     "real fee before you confirm)")
    emit(args, rows, "\n".join(lines))
    return 0
