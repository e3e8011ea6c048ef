"""Benchmark the app-level paths a stranger's market data takes (issue 16): a spec fetched by the
miner (the store under the input policy, then jobs.spec.load_market_spec and the work estimate),
a result card read by the buyer (app.buyer's card_from_tar), a model card fetched for a listing
(store with the card cap, then jobs.train.card.load_card), each at the largest size accepted and
just over it, plus the deep (200,000 levels) variants.

    .venv/bin/python bench/bench_poisoned_market.py [--repeat 3]

Runs with web3 imported (recursion limit 100,000). Times in milliseconds, best of --repeat, each
run on a fresh store (so the fetch and its hash check are timed). Prints one JSON object.
The end-to-end figures (a real chain, the real services) are printed by the tests:
tests/agent/test_poisoned_market.py (start to the honest job's claim behind a 200,000-deep spec),
tests/buyer/test_poisoned_results.py and tests/models/test_provenance.py (a whole pass / a whole
`kminer models list` with a deep and an over-size card).

Measured here (2 CPU cores shared with other work, load average 7.4, best of 3), each through the
fetch into a fresh store, its hash check and the bounded parse:
- accepted: the largest spec (1,048,223 bytes) with its work estimate in 78 ms; the largest
  result card (4,164,716 bytes) in 121 ms; the largest model card (4,114,312 bytes) in 537 ms.
- refused: a spec 1 byte over 1 MiB in 6 ms (the fetch stops at the cap); a result card over
  4 MiB in 15 ms; a model card over 4 MiB in 40 ms; each nested 200,000 deep (400 KB) in
  11-27 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import web3  # noqa: E402,F401  (the recursion limit the app runs with)

from bench_hostile_data import best_ms, largest_card, largest_model_card, largest_spec  # noqa: E402
from common.safejson import CARD_LIMITS, SPEC_LIMITS  # noqa: E402
from jobs.artifacts import ArtifactError, ArtifactStore  # noqa: E402
from jobs.estimate import estimate_job  # noqa: E402
from jobs.render.dataset_card import CardError, card_from_tar  # noqa: E402
from jobs.spec import SpecError, load_market_spec  # noqa: E402
from jobs.train import TrainError  # noqa: E402
from jobs.train.card import load_card  # noqa: E402
from jobs.url_policy import UrlPolicy  # noqa: E402

DEEP = b"[" * 200_000 + b"]" * 200_000


def _timed(fn, repeat: int) -> tuple[float, str]:
    """Best time of `fn` and what it said: "accepted" or the first line of its refusal."""
    said = ""

    def run():
        nonlocal said
        try:
            fn()
            said = "accepted"
        except (ArtifactError, SpecError, CardError, TrainError, ValueError) as e:
            said = str(e).split("; ")[-1][-140:]

    return best_ms(run, repeat), said


def spec_path(tmp: Path, data: bytes, policy: UrlPolicy) -> None:
    """The miner's Claims.load_spec + estimate: fetch under the capped policy, decode, size."""
    src = tmp / f"src-{hashlib.sha256(data).hexdigest()[:8]}"
    src.write_bytes(data)
    store = ArtifactStore(Path(tempfile.mkdtemp(dir=tmp)))
    cap = policy.capped(max_bytes=SPEC_LIMITS.max_bytes, timeout_s=30)
    spec = load_market_spec(store.fetch(hashlib.sha256(data).hexdigest(), src.as_uri(), policy=cap))
    estimate_job(spec)


def card_tar(tmp: Path, card: bytes) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("dataset.json")
        info.size = len(card)
        tar.addfile(info, io.BytesIO(card))
    p = tmp / f"result-{hashlib.sha256(card).hexdigest()[:8]}.tar"
    p.write_bytes(buf.getvalue())
    return p


def model_card_path(tmp: Path, data: bytes, policy: UrlPolicy) -> None:
    """ModelService._card: fetch with the card cap, then load_card (bounded, checked)."""
    src = tmp / f"card-{hashlib.sha256(data).hexdigest()[:8]}.json"
    src.write_bytes(data)
    store = ArtifactStore(Path(tempfile.mkdtemp(dir=tmp)))
    cap = policy.capped(max_bytes=CARD_LIMITS.max_bytes, timeout_s=20)
    load_card(store.fetch(hashlib.sha256(data).hexdigest(), src.as_uri(), policy=cap))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kminer-bench-poison-"))
    policy = UrlPolicy(local_roots=frozenset({str(tmp)}))
    spec = largest_spec()
    over_spec = spec[:-1] + b" " * (SPEC_LIMITS.max_bytes + 1 - len(spec)) + b"}"
    card, mcard = largest_card(), largest_model_card()
    over_card = b'{"x": "' + b"a" * (CARD_LIMITS.max_bytes + 10) + b'"}'
    out: dict = {"load_avg": round(os.getloadavg()[0], 2)}
    rows = {
        "miner spec, largest accepted": (len(spec), lambda: spec_path(tmp, spec, policy)),
        "miner spec, 1 byte over 1 MiB": (len(over_spec), lambda: spec_path(tmp, over_spec, policy)),
        "miner spec, 200,000 deep": (len(DEEP), lambda: spec_path(tmp, DEEP, policy)),
        "buyer result card, largest accepted": (len(card), lambda: card_from_tar(card_tar(tmp, card))),
        "buyer result card, over 4 MiB": (len(over_card), lambda: card_from_tar(card_tar(tmp, over_card))),
        "buyer result card, 200,000 deep": (len(DEEP), lambda: card_from_tar(card_tar(tmp, DEEP))),
        "model card, largest accepted": (len(mcard), lambda: model_card_path(tmp, mcard, policy)),
        "model card, over 4 MiB": (len(over_card), lambda: model_card_path(tmp, over_card, policy)),
        "model card, 200,000 deep": (len(DEEP), lambda: model_card_path(tmp, DEEP, policy)),
    }
    for name, (size, fn) in rows.items():
        ms, said = _timed(fn, a.repeat)
        out[name] = {"bytes": size, "ms": ms, "result": said}
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
