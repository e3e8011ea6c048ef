"""Benchmark the defences against hostile market data (issue 16): the largest spec, card and
node reply accepted, with their parse times, and the time to reject over-size or over-deep ones.

    .venv/bin/python bench/bench_hostile_data.py [--repeat 5]

Runs in one process with web3 imported (recursion limit 100,000: where plain json.loads on deep
input dies of SIGSEGV). Times are the best of --repeat runs, in milliseconds. Prints one JSON
object; the load average is included (the machine is shared).

Measured here (2 CPU cores shared with other work, load average 2.7, Python 3.11, best of 3):
- accepted: the largest job spec (a render shard whose scene has 228 assets with 64 label
  images each, 1,048,223 bytes) in 18 ms with validation (plain json.loads: 2.3 ms), its work
  estimate in 19 ms; a 4.2 MB dataset card in 40 ms (11 ms); a 4.1 MB model card in 244 ms
  (69,000 small objects: the duplicate-key check is Python); a 16 MiB eth_getLogs-like node
  reply in 202 ms (60 ms).
- refused: a spec 1 byte over 1 MiB in 0.01 ms; nested 200,000 deep (400 KB) in 3.5 ms;
  1 MiB of '[' in 9 ms; 100,001 items in 0.7 ms; a node reply of 20 MB of NUL bytes in 0.01 ms
  (the HTTP read stops at 16 MiB first); a 16 MiB reply nested 8 million deep in 274 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import web3  # noqa: E402,F401  (the recursion limit the app runs with)

from common.safejson import CARD_LIMITS, RPC_LIMITS, SPEC_LIMITS, SafeJsonError, loads_bounded  # noqa: E402
from jobs.estimate import REFERENCE_RATES, estimate_job  # noqa: E402
from jobs.render.dataset_card import check_card  # noqa: E402
from jobs.spec import SpecError, parse_spec_bytes  # noqa: E402
from jobs.train.card import check_card as check_model_card  # noqa: E402
from wallet.errors import RpcBadReply  # noqa: E402
from wallet.rpc_http import decode_reply  # noqa: E402

SHELF = json.loads((ROOT / "resources" / "scenes" / "retail_shelf.json").read_text())


def best_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 2)


def refused_ms(fn, errors, repeat: int) -> tuple[float, str]:
    msg = ""

    def run():
        nonlocal msg
        try:
            fn()
        except errors as e:
            msg = str(e)[:120]
            return
        raise AssertionError("accepted")

    return best_ms(run, repeat), msg


def largest_spec() -> bytes:
    """A render job whose scene holds 256 assets with label images, grown to just under 1 MiB."""
    scene = json.loads(json.dumps(SHELF))
    base = scene["assets"][0]
    assets, n = [], 0
    while True:
        a = json.loads(json.dumps(base))
        a["name"] = f"asset-{n}"
        a["material"]["label"] = {"images": [f"{(n * 64 + k):064x}" for k in range(64)]}
        trial = {**scene, "assets": assets + [a]}
        spec = {"id": "big", "kind": "render", "params": {"scene": trial, "start": 0, "count": 100}}
        data = json.dumps(spec).encode()
        if len(data) > SPEC_LIMITS.max_bytes or len(assets) == 256:
            break
        assets.append(a)
        n += 1
    return json.dumps({"id": "big", "kind": "render",
                       "params": {"scene": {**scene, "assets": assets}, "start": 0, "count": 100}}).encode()


def largest_card() -> bytes:
    """A render dataset card padded (in `software`) to just under CARD_LIMITS.max_bytes."""
    card = {"format": "kminer-render-dataset", "version": 1, "scene": "s", "spec_hash": "a" * 64, "seed": 3,
            "frame_ranges": [[i * 10, i * 10 + 5] for i in range(10_000)], "counts": {"images": 50_000},
            "time": {"started_utc": "2026-01-01T00:00:00Z", "seconds": 1.5},
            "class_histogram": {f"class-{i}": i for i in range(255)}, "software": {}}
    size = len(json.dumps(card))
    card["software"] = {f"k{i}": "v" * 1000 for i in range((CARD_LIMITS.max_bytes - size) // 1020)}
    return json.dumps(card).encode()


def largest_model_card() -> bytes:
    card = {"format": "kminer-model-card/1", "arch": "centernet-s", "task": "detect", "name": "big",
            "classes": [f"class-{i:04d}" + "x" * 50 for i in range(1000)], "input_size": [320, 240],
            "weights": {"file": "model.safetensors", "sha256": "b" * 64}, "metrics": {}, "curves": []}
    size = len(json.dumps(card))
    card["curves"] = [{"epoch": i, "train_loss": 0.123456789, "map50": 0.5} for i in range((CARD_LIMITS.max_bytes - size) // 60)]
    return json.dumps(card).encode()


def rpc_reply() -> bytes:
    """An eth_getLogs-like reply of just under 16 MiB."""
    log = {"address": "0x" + "1" * 40, "topics": ["0x" + "2" * 64] * 3, "data": "0x" + "3" * 192,
           "blockNumber": "0x10", "transactionHash": "0x" + "4" * 64, "logIndex": "0x0", "removed": False}
    one = len(json.dumps(log)) + 2
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": [log] * ((RPC_LIMITS.max_bytes - 100) // one)}).encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    r = a.repeat
    out: dict = {"load_avg": os.getloadavg()[0], "recursion_limit": sys.getrecursionlimit()}

    spec = largest_spec()
    job = parse_spec_bytes(spec)
    out["largest_spec"] = {"bytes": len(spec), "assets": len(job.params["scene"]["assets"]),
                           "parse_ms": best_ms(lambda: parse_spec_bytes(spec), r),
                           "plain_json_loads_ms": best_ms(lambda: json.loads(spec), r),
                           "estimate_ms": best_ms(lambda: estimate_job(parse_spec_bytes(spec)), r),
                           "estimate_cpu_s": round(estimate_job(job).seconds(REFERENCE_RATES["cpu"]), 1)}
    card = largest_card()
    out["largest_dataset_card"] = {"bytes": len(card),
                                   "parse_ms": best_ms(lambda: check_card(loads_bounded(card, CARD_LIMITS)), r),
                                   "plain_json_loads_ms": best_ms(lambda: json.loads(card), r)}
    mcard = largest_model_card()
    out["largest_model_card"] = {"bytes": len(mcard),
                                 "parse_ms": best_ms(lambda: check_model_card(loads_bounded(mcard, CARD_LIMITS)), r)}
    reply = rpc_reply()
    out["largest_rpc_reply"] = {"bytes": len(reply), "parse_ms": best_ms(lambda: decode_reply(reply), r),
                                "plain_json_loads_ms": best_ms(lambda: json.loads(reply), r)}

    rejects = {
        "spec_over_size_1MiB+1": (b" " * (SPEC_LIMITS.max_bytes + 1), SpecError, parse_spec_bytes),
        "spec_nested_200000": (b'{"id": "x", "kind": "render", "params": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
                               SpecError, parse_spec_bytes),
        "spec_1MiB_of_open_brackets": (b"[" * SPEC_LIMITS.max_bytes, SpecError, parse_spec_bytes),
        "spec_100001_items": (b"[" + b"0," * 100_000 + b"0]", SpecError, parse_spec_bytes),
        "card_nested_200000": (b"[" * 200_000 + b"]" * 200_000, SafeJsonError, lambda d: loads_bounded(d, CARD_LIMITS)),
        "rpc_20MB_of_NUL": (b"\0" * 20_000_000, RpcBadReply, decode_reply),
        "rpc_16MiB_nested": (b"[" * (RPC_LIMITS.max_bytes // 2) + b"]" * (RPC_LIMITS.max_bytes // 2), RpcBadReply,
                             decode_reply),
    }
    out["reject_ms"] = {}
    for name, (data, err, fn) in rejects.items():
        ms, msg = refused_ms(lambda fn=fn, data=data: fn(data), err, r)
        out["reject_ms"][name] = {"ms": ms, "error": msg}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
