"""Wallet benchmark: keystore unlock, transaction latency (embedded chain and anvil), indexer
sync speed at ~10,000 events (both chains).

    .venv/bin/python bench/bench_wallet.py [--txs 100] [--events 10000] [--json]

Needs `make node` (anvil from npm). Prints one line per figure; --json prints them as JSON.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ANVIL = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil dev key (no value)
NTK = 10**18


def bench_unlock(tmp: Path) -> dict:
    from wallet.keystore import DEFAULT_SCRYPT_N, Keystore

    ks = Keystore(tmp / "ks")
    addr = ks.create("bench-password")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        ks.unlock(addr, "bench-password")
        times.append(time.perf_counter() - t)
    return {"keystore_unlock_s": statistics.median(times), "scrypt_n": DEFAULT_SCRYPT_N}


def _latency(chain, acct, token, n: int) -> dict:
    to = "0x" + "42" * 20
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        token.transfer(acct, to, 1)
        lat.append(time.perf_counter() - t)
    lat.sort()
    return {"tx_latency_median_ms": 1000 * statistics.median(lat), "tx_latency_p95_ms": 1000 * lat[int(0.95 * (n - 1))]}


def _make_events(market, acct, chain, n_events: int) -> int:
    per_tx = 128  # 128 JobPosted + 1 Transfer per transaction (~20 M gas)
    txs = -(-n_events // (per_tx + 1))
    market.token.approve(acct, market.jobs_contract.address, 2**255)
    deadline = chain.latest_timestamp() + 86_400
    for t in range(txs):
        hashes = ["0x" + f"{t * per_tx + i + 1:064x}" for i in range(per_tx)]
        fn = market.jobs_contract.functions.postShards(1, [bytes.fromhex(h[2:]) for h in hashes],
                                                       [f"u{i}" for i in range(per_tx)], 1, deadline, 600, 0)
        chain.transact(acct, fn, gas=25_000_000, what="shards")
    return txs * (per_tx + 1)


def _index(chain, dep, db: Path) -> dict:
    from wallet.indexer import for_deployment

    idx = for_deployment(chain, db, dep, step=2_000)
    t = time.perf_counter()
    res = idx.sync()
    dt = time.perf_counter() - t
    t = time.perf_counter()
    hist = idx.history(limit=100)
    q = time.perf_counter() - t
    n = idx.count()
    idx.close()
    return {"indexed_events": n, "index_sync_s": dt, "index_events_per_s": n / dt, "history_query_ms": 1000 * q,
            "blocks": res.to_block - res.from_block + 1, "history_rows": len(hist)}


def bench_embedded(tmp: Path, n_tx: int, n_events: int) -> dict:
    from eth_account import Account

    from wallet.chain import Chain
    from wallet.deploy import deploy_all
    from wallet.embedded import EmbeddedChain
    from wallet.market import MarketClient

    acct = Account.create()
    out = {}
    with EmbeddedChain(tmp / "chain", acct.address) as ec:
        chain = Chain.over_embedded(ec, lock_dir=tmp)
        dep = deploy_all(chain, acct)
        m = MarketClient(chain, dep)
        m.token.mint(acct, acct.address, 10**9 * NTK)
        out.update(_latency(chain, acct, m.token, n_tx))
        out["events_made"] = _make_events(m, acct, chain, n_events)
        out.update(_index(chain, dep, tmp / "index-embedded.sqlite"))
        tx_hash = m.token.transfer(acct, acct.address, 1).tx_hash
        first = m.token.transfer(acct, acct.address, 1)  # noqa: F841 - one more block on top
        t = time.perf_counter()
        chain.w3.eth.get_transaction_receipt(tx_hash)
        out["receipt_lookup_ms"] = 1000 * (time.perf_counter() - t)
    t = time.perf_counter()
    with EmbeddedChain(tmp / "chain") as ec:
        out["reopen_ms"] = 1000 * (time.perf_counter() - t)
        out["chain_blocks"] = ec.block_number
    out["chain_db_mb"] = sum(p.stat().st_size for p in (tmp / "chain").iterdir()) / 1e6
    return out


def bench_anvil(tmp: Path, n_tx: int, n_events: int) -> dict:
    from eth_account import Account

    from wallet.chain import Chain
    from wallet.deploy import deploy_all
    from wallet.market import MarketClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(ANVIL), "--host", "127.0.0.1", "--port", str(port), "--silent", "--gas-limit", "60000000"])
    try:
        time.sleep(1.0)
        chain = Chain.rpc(f"http://127.0.0.1:{port}", lock_dir=tmp)
        acct = Account.from_key(ANVIL_KEY)
        dep = deploy_all(chain, acct)
        m = MarketClient(chain, dep)
        m.token.mint(acct, acct.address, 10**9 * NTK)
        out = _latency(chain, acct, m.token, n_tx)
        out["events_made"] = _make_events(m, acct, chain, n_events)
        out.update(_index(chain, dep, tmp / "index-anvil.sqlite"))
        return out
    finally:
        proc.terminate()
        proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=100)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {"unlock": bench_unlock(tmp), "embedded": bench_embedded(tmp / "e", args.txs, args.events),
               "anvil": bench_anvil(tmp / "a", args.txs, args.events)}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for section, vals in res.items():
            for k, v in vals.items():
                print(f"{section:9s} {k:24s} {v:.3f}" if isinstance(v, float) else f"{section:9s} {k:24s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
