"""`kminer market`: the job market, buyer and miner sides, headless.

    kminer market list|show|post|claim|submit|accept|reject|release|refund|reputation|deploy|use [--json]

Amounts are given in NTK (e.g. 12.5) and handled in base units; hashes are 32-byte hex.
Network, account and password options are those of `kminer wallet`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from app.amounts import ntk_text
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

    dp = msub.add_parser("deploy", help="deploy NTK and the markets on a test network (devnet, sepolia...)")
    add_wallet_options(dp)
    dp.set_defaults(handler=cmd_deploy)


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
    with open_wallet(args) as svc:
        if svc.network.embedded:
            d = user_errors(svc.deployment)
        else:
            d = user_errors(svc.deploy)
        emit(args, d, f"NTK {d.ntk}\nJobMarket {d.job_market}\nModelMarket {d.model_market}\n(chain {d.chain_id})")
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
