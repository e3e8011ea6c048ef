"""Gas per shard of the OrderMarket protocol: orders of 1, 10 and 100 shards, each path.

    .venv/bin/python bench/bench_order_gas.py [--chains embedded,anvil,anvil-op] [--sizes 1,10,100] [--json OUT]

Paths, each on its own order (off-chain messages are signed for real but cost no gas):
  happy       post; grants, confirmations, commitments, acks off chain; one voucher redeemed
  happy x10   ten orders posted, their ten vouchers redeemed in one transaction
  onchain     post with every shard claimed on chain (the claim fallback), one voucher redeemed
  silent      post; the miner submits every shard on chain, waits the review window, releases
  rejection   post; the miner submits every shard, the buyer rejects each, then refunds
  refund      post; nobody delivers; the buyer refunds after the windows
  no-shows    as refund, plus a slash of every confirmed claim
Chains: the embedded chain (the app's persistent py-evm chain; its clock moves at least a
second a block, so windows pass by mining empty blocks),
anvil, and anvil in OP-stack mode with L1 fee parameters in its L1Block predeploy (the L1
data fee charged is measured from balances). Steady state: one warm-up order runs first, and
the buyer's allowance is approved once beforehand (46 k gas, not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil dev key (no value)
NTK = 10**18
REWARD = 10 * NTK
"""The app's default render order: 200 frames in 4 shards for a 40 NTK budget (ui/orders_view.py)."""


@dataclass
class Meter:
    """Gas and L1 fee of every transaction, under the label current when it was sent."""

    label: tuple = ()
    rows: list = field(default_factory=list)


def metered(chain_cls):
    class Metered(chain_cls):
        meter = Meter()

        def transact(self, account, fn=None, **kw):
            before = self.balance_wei(account.address)
            res = super().transact(account, fn, **kw)
            spent = before - self.balance_wei(account.address) - kw.get("value_wei", 0)
            price = res.receipt.get("effectiveGasPrice", 0)
            self.meter.rows.append((self.meter.label, account.address, res.gas_used, spent - res.gas_used * price))
            return res
    return Metered


class Bench:
    def __init__(self, chain, accounts, advance):
        from wallet.deploy import deploy_all
        from wallet.order_market import OrderMarketClient

        self.chain, self.advance = chain, advance
        self.deployer, self.buyer, self.miner, self.payout = accounts
        dep = deploy_all(chain, self.deployer)
        self.om = OrderMarketClient(chain, dep.order_market)
        for a in (self.buyer, self.payout):
            self.om.token.mint(self.deployer, a.address, 10**9 * NTK)
        self.om.token.approve(self.buyer, self.om.address, 2**256 - 1)  # a standing cap: no approval per order
        self.om.deposit_stake(self.payout, self.miner.address, 10**6 * NTK)

    def label(self, *label):
        self.chain.meter.label = label

    def post(self, shards: int, deadline: int, review: int, redeem: int, signed_shards: int | None = None) -> int:
        from wallet.order_market import OrderTerms

        terms = OrderTerms("render", "0x" + os.urandom(32).hex(), f"p2p://spec/{os.urandom(8).hex()}", shards, REWARD,
                           deadline, review, redeem, stake_bps=1_000, signed_shards=signed_shards)
        return self.om.post_order(self.buyer, terms)[0]

    def grant_and_confirm(self, oid: int, shard: int):
        from wallet.order_messages import Claim

        c = Claim(oid, shard, self.miner.address, self.payout.address)
        return self.om.sign(c, self.buyer), self.om.sign(c, self.miner)

    def deliver_off_chain(self, oid: int, shards: int):
        """Everything the happy path signs: grant, confirmation, commitment, ack; then a voucher."""
        from wallet.order_messages import ResultAck, ResultCommit, Voucher, key_hash

        for s in range(shards):
            self.grant_and_confirm(oid, s)
            key = os.urandom(32)
            res = (os.urandom(32), key_hash(key))
            self.om.sign(ResultCommit(oid, s, self.miner.address, self.payout.address, *res), self.miner)
            self.om.sign(ResultAck(oid, s, self.miner.address, self.payout.address, *res), self.buyer)
        return self.om.sign(Voucher.of(oid, self.payout.address, range(shards)), self.buyer)

    def run(self, sizes: list[int], review_s: int, redeem_s: int, margin_s: int) -> None:
        """The paths for every size. Deadlines are set per order to cover the transactions due
        before them (three times the measured time per transaction, plus `margin_s`), so a
        chain whose windows pass in real time waits no longer than it must."""
        from wallet.order_messages import key_hash

        far = self.chain.latest_timestamp() + 86_400  # the happy paths never wait on their windows
        self.label("warm-up")
        t0, ts0, sent0 = time.monotonic(), self.chain.latest_timestamp(), len(self.chain.meter.rows)
        w = self.post(2, far, review_s, redeem_s)
        self.om.redeem(self.miner, [self.deliver_off_chain(w, 2)])
        for n in sizes:
            self.label("happy", n)
            oid = self.post(n, far, review_s, redeem_s)
            self.om.redeem(self.miner, [self.deliver_off_chain(oid, n)])
            self.label("happy x10", n)
            batch = [self.post(n, far, review_s, redeem_s) for _ in range(10)]
            self.om.redeem(self.miner, [self.deliver_off_chain(o, n) for o in batch])
            self.label("onchain", n)
            oid = self.post(n, far, review_s, redeem_s, signed_shards=0)
            for s in range(n):
                self.om.claim_onchain(self.miner, oid, s, self.payout.address)
            self.om.redeem(self.miner, [self.deliver_off_chain(oid, n)])
        sent = len(self.chain.meter.rows) - sent0  # chain time per transaction: wall time, or a second a block
        tx_s = max(time.monotonic() - t0, self.chain.latest_timestamp() - ts0) / sent
        orders, submitted = {}, {}
        for n in sizes:
            for path in ("silent", "rejection"):
                self.label(path, n)
                oid = orders[(path, n)] = self.post(n, self.chain.latest_timestamp() + margin_s + int(6 * n * tx_s) + 1,
                                                    review_s, redeem_s)
                for s in range(n):
                    grant, _ = self.grant_and_confirm(oid, s)
                    res, key = os.urandom(32), os.urandom(32)
                    self.om.submit_result(self.miner, grant, res, key_hash(key))
                    submitted[(path, n, s)] = (grant.message, res, key)
                    if path == "rejection":
                        self.om.reject(self.buyer, grant.message, res, key_hash(key), os.urandom(32), "p2p://evidence")
            for path in ("refund", "no-shows"):
                self.label(path, n)
                orders[(path, n)] = self.post(n, self.chain.latest_timestamp() + margin_s, review_s, redeem_s)
        self.advance(max(self.om.order(o).hold_until for o in orders.values()) + 1 - self.chain.latest_timestamp())
        for n in sizes:
            self.label("silent", n)
            for s in range(n):
                claim, res, key = submitted[("silent", n, s)]
                self.om.release(self.miner, claim, res, key)
            for path in ("rejection", "refund", "no-shows"):
                self.label(path, n)
                self.om.refund(self.buyer, orders[(path, n)])
            self.label("no-shows", n)
            for s in range(n):
                _, confirmed = self.grant_and_confirm(orders[("no-shows", n)], s)
                self.om.slash(self.buyer, confirmed)


def summarize(rows, buyer: str, sizes: list[int]) -> list[dict]:
    out = []
    for path, shards_per in (("happy", 1), ("happy x10", 10), ("onchain", 1), ("silent", 1), ("rejection", 1),
                             ("refund", 1), ("no-shows", 1)):
        for n in sizes:
            mine = [r for r in rows if r[0] == (path, n)]
            shards = n * shards_per
            gas = sum(r[2] for r in mine)
            out.append({"path": path, "shards": n, "orders": shards_per, "txs": len(mine), "gas": gas,
                        "gas_per_shard": gas / shards,
                        "buyer_gas_per_shard": sum(r[2] for r in mine if r[1] == buyer) / shards,
                        "miner_gas_per_shard": sum(r[2] for r in mine if r[1] != buyer) / shards,
                        "l1_fee_wei_per_shard": sum(r[3] for r in mine) / shards})
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accounts(n: int):
    from eth_account import Account

    return [Account.create() for _ in range(n)]


def bench_embedded(tmp: Path, sizes: list[int]) -> list[dict]:
    from wallet.chain import Chain
    from wallet.embedded import EmbeddedChain

    deployer, *others = _accounts(4)
    emb = EmbeddedChain(tmp / "chain", deployer.address)
    chain = metered(Chain).over_embedded(emb, lock_dir=tmp / "locks")
    for a in others:
        chain.transact(deployer, to=a.address, value_wei=10**22, gas=21_000)

    def advance(seconds: int) -> None:
        target = chain.latest_timestamp() + seconds  # each block is at least a second after its parent
        while chain.latest_timestamp() < target:
            emb.mine_empty()

    try:
        b = Bench(chain, [deployer, *others], advance)
        b.run(sizes, review_s=5, redeem_s=5, margin_s=10)
        return summarize(chain.meter.rows, b.buyer.address, sizes)
    finally:
        emb.close()


def bench_anvil(tmp: Path, sizes: list[int], *, optimism: bool) -> tuple[list[dict], dict]:
    from eth_account import Account

    from wallet.chain import Chain
    from wallet.fees import L1_BLOCK, REFERENCE_L1

    port = _free_port()
    cmd = [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent", "--gas-limit", "60000000"]
    proc = subprocess.Popen(cmd + (["--network", "optimism"] if optimism else []))
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        chain = metered(Chain).rpc(f"http://127.0.0.1:{port}", lock_dir=tmp / "locks")
        w3 = chain.w3
        if optimism:
            p = REFERENCE_L1
            for slot, v in ((1, p.l1_base_fee_wei), (3, (p.base_fee_scalar << 96) | (p.blob_base_fee_scalar << 64)),
                            (7, p.blob_base_fee_wei)):
                w3.provider.make_request("anvil_setStorageAt", [L1_BLOCK, hex(slot), "0x" + v.to_bytes(32, "big").hex()])
        deployer, *others = [Account.from_key(ANVIL_KEY), *_accounts(3)]
        for a in others:
            chain.transact(deployer, to=a.address, value_wei=10**21)

        def advance(seconds: int) -> None:
            w3.provider.make_request("evm_increaseTime", [max(seconds, 1)])
            w3.provider.make_request("evm_mine", [])

        b = Bench(chain, [deployer, *others], advance)
        b.run(sizes, review_s=600, redeem_s=600, margin_s=3_600)
        return summarize(chain.meter.rows, b.buyer.address, sizes), {"l1": vars(REFERENCE_L1) if optimism else None}
    finally:
        proc.terminate()
        proc.wait(10)


def print_table(name: str, rows: list[dict]) -> None:
    print(f"\n{name}: gas per shard (buyer + miner), L1 data fee per shard")
    print(f"{'path':<11}{'shards':>7}{'orders':>7}{'txs':>6}{'gas/shard':>11}{'buyer':>9}{'miner':>9}{'L1 gwei':>10}")
    for r in rows:
        print(f"{r['path']:<11}{r['shards']:>7}{r['orders']:>7}{r['txs']:>6}{r['gas_per_shard']:>11,.0f}"
              f"{r['buyer_gas_per_shard']:>9,.0f}{r['miner_gas_per_shard']:>9,.0f}{r['l1_fee_wei_per_shard'] / 1e9:>10,.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chains", default="embedded,anvil,anvil-op")
    ap.add_argument("--sizes", default="1,10,100")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    out = {}
    with tempfile.TemporaryDirectory(prefix="kminer-bench-orders-") as t:
        tmp = Path(t)
        for name in args.chains.split(","):
            t0 = time.perf_counter()
            if name == "embedded":
                out[name] = {"rows": bench_embedded(tmp / name, sizes)}
            elif name in ("anvil", "anvil-op"):
                rows, extra = bench_anvil(tmp / name, sizes, optimism=name == "anvil-op")
                out[name] = {"rows": rows, **extra}
            else:
                raise SystemExit(f"unknown chain {name!r}")
            out[name]["seconds"] = round(time.perf_counter() - t0, 1)
            print_table(f"{name} ({out[name]['seconds']} s)", out[name]["rows"])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
