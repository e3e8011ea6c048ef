"""`kminer order` and `kminer devnet` as a user types them: one-line errors, nothing posted
on bad input, JSON where the output is data (real processes, the embedded chain)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "resources" / "scenes" / "table_top.json"


def kminer(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, KMINER_HOME=str(home), KMINER_PASSWORD="order-cli-pw")
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def one_line_error(r: subprocess.CompletedProcess, code: int = 1) -> str:
    assert r.returncode == code, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["render", "/nonexistent.json", "--count", "2", "--reward", "1"], "scene file /nonexistent.json not found"),
    (["render", str(TABLE), "--count", "2", "--reward", "1", "--size", "96"], "use WIDTHxHEIGHT"),
    (["render", str(TABLE), "--count", "2", "--reward", "1", "--review-hours", "0"], "must be positive"),
    (["render", str(TABLE), "--count", "2", "--reward", "lots"], "lots"),
    (["watch", "--interval", "0"], "--interval must be positive"),
    (["train", "--data", "1", "--reward", "1", "--params", "/nonexistent.json"], "--params /nonexistent.json"),
    (["train", "--reward", "1"], "name the data: --dataset ORDER|DIR (order market), or --job-market --data ORDER"),
    (["train", "--job-market", "--reward", "1"], "name the data: --data ORDER (job market)"),
    (["train", "--job-market", "--data", "1", "--holdout", "/some/dir", "--reward", "1"],
     "on the job market, a render order's number"),
    (["train", "--p2p", "--reward", "1"], "name the data to train on: --dataset ORDER|DIR"),
    (["train", "--p2p", "--data", "1", "--reward", "1"], "the order market trains on --dataset ORDER|DIR"),
    (["train", "--p2p", "--dataset", "x", "--holdout-share", "1", "--reward", "1", "--min-metric", "0.5"],
     "--holdout-share must be between"),
    (["train", "--dataset", "x", "--reward", "1"], "a train order on the order market needs --min-metric M: the least "
                                                   "mAP@0.5 (accuracy for classifiers)"),
    (["train", "--dataset", "x", "--reward", "1", "--min-metric", "0"], "--min-metric must be more than 0 and at most 1"),
])
def test_bad_input_is_one_line_before_anything_happens(tmp_path, args, message):
    assert message in one_line_error(kminer(tmp_path, "order", *args))


@pytest.mark.slow
def test_orders_on_a_new_wallet(tmp_path):
    r = kminer(tmp_path, "order", "list")
    assert "no wallet account yet" in one_line_error(r)
    assert kminer(tmp_path, "wallet", "create").returncode == 0  # a local chain, funded
    assert kminer(tmp_path, "order", "list").stdout.strip() == "no orders"
    assert json.loads(kminer(tmp_path, "order", "list", "--json").stdout) == []
    # the local chain's default is the order market: its checks, and the job market's with --job-market
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "2", "--shards", "3", "--reward", "1")
    assert "--shards must be 1 to 128 and at most --count" in one_line_error(r)
    # 3 frames a shard: not even one can be sampled within a quarter: said before the cost is shown, even with --yes
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "6", "--shards", "2", "--reward", "1", "--yes")
    said = one_line_error(r)
    assert said.startswith("kminer: error: a render shard needs at least 4 frames") and "Escrow" not in r.stderr, said
    assert said.endswith("6 frames make at most 1 shard(s): use fewer --shards or more --count"), said
    assert kminer(tmp_path, "order", "list").stdout.strip() == "no orders"   # nothing posted
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "2", "--shards", "3", "--reward", "1", "--job-market")
    assert "1 <= shards <= count" in one_line_error(r)
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "4", "--reward", "1")
    said = r.stderr.strip().splitlines()  # which market, what it costs, and nothing posted without --yes
    assert r.returncode == 1 and said[0] == "posting on the order market (peer to peer; --job-market for the job market)"
    assert said[-1] == "kminer: error: posting needs a confirmation: add --yes (no terminal to ask on)", said
    assert "no order 4" in one_line_error(kminer(tmp_path, "order", "fetch", "4", "--out", str(tmp_path / "x")))
    r = kminer(tmp_path, "order", "train", "--data", "1", "--reward", "2")
    assert "--data names job-market orders: add --job-market" in one_line_error(r)
    # a train order on the order market: 20 images hold out 4, too few for the default tolerance: refused before
    # any fee is asked, unless the buyer names its tolerance; the confirmation names the least metric
    from jobs.train.synthetic import make_shapes_dataset

    shapes = make_shapes_dataset(tmp_path / "shapes", n_images=20, size=(48, 36), seed=2)
    r = kminer(tmp_path, "order", "train", "--dataset", str(shapes), "--min-metric", "0.5", "--reward", "1")
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1] == (
        "kminer: error: 4 held-out images are too few to check a model's card (the default tolerance would be 1.00): "
        "hold out more images, or name the tolerance yourself (--holdout-share, --holdout or --tolerance)"), r.stderr
    assert "fee" not in r.stdout + r.stderr
    r = kminer(tmp_path, "order", "train", "--dataset", str(shapes), "--min-metric", "0.5", "--tolerance", "0.3",
               "--reward", "1")
    assert ("held-out check: The model is checked here on 4 held-out images and paid only if it measures at least 0.5 "
            "there, and at most 0.300 below its card's metric (your tolerance).") in r.stdout + r.stderr, r
    assert r.returncode == 1 and "posting needs a confirmation: add --yes" in r.stderr.strip().splitlines()[-1]
    r = kminer(tmp_path, "order", "render", str(TABLE), "--count", "2", "--shards", "2", "--reward", "1.5",
               "--size", "96x72", "--job-market", "--json")
    o = json.loads(r.stdout)
    assert o["state"] == "open" and o["total_wei"] == str(3 * 10**18) and len(o["shards"]) == 2
    assert json.loads(kminer(tmp_path, "market", "list", "--json").stdout)[1]["status"] == "open"
    assert kminer(tmp_path, "order", "list").stdout.startswith("job market:\n  job:1 render")
    r = kminer(tmp_path, "order", "train", "--job-market", "--data", str(o["id"]), "--reward", "2", "--epochs", "1",
               "--json")
    t = json.loads(r.stdout)
    assert t["state"] == "waiting" and t["params"]["train"] == {"epochs": 1}
    assert "is open: nothing verified" in one_line_error(kminer(tmp_path, "order", "fetch", str(o["id"]),
                                                               "--out", str(tmp_path / "x")))
    shown = kminer(tmp_path, "order", "show", str(o["id"])).stdout
    assert "shard 1 frames 1-1 job #2: open" in shown


def test_devnet_refuses_a_busy_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"port {port} on 127.0.0.1 is in use" in one_line_error(kminer(tmp_path, "devnet", "--port", str(port)))
