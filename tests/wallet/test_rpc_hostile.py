"""Node replies are stranger data: a misbehaving JSON-RPC node (tests/wallet/hostile_node.py,
on 127.0.0.1) gives one short, clear error within a few seconds, never a crash, a hang or a
megabyte message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from wallet.chain import Chain
from wallet.errors import NodeError, RpcBadReply, RpcUnavailable

from .hostile_node import HostileNode

ROOT = Path(__file__).resolve().parents[2]
FAST = {"timeout_s": 0.5, "retry_delays_s": (0.05,)}


def _connect(node: HostileNode, tmp_path: Path, **kw) -> Chain:
    return Chain.rpc(node.url, lock_dir=tmp_path / "locks", **{**FAST, **kw})


def test_a_good_reply_still_works(tmp_path):
    with HostileNode("ok", result="0x539") as node:
        assert _connect(node, tmp_path).chain_id == 1337


@pytest.mark.parametrize("mode, error, words", [
    ("silent", RpcUnavailable, "no answer in time"),
    ("drip", RpcUnavailable, "no answer in time"),
    ("http500", RpcUnavailable, "HTTP 500"),
    ("huge", RpcBadReply, "over 16,777,216 bytes"),
    ("garbage", RpcBadReply, "not valid JSON"),
    ("deep", RpcBadReply, "nested too deep"),
    ("nan", RpcBadReply, "NaN is not allowed"),
    ("error", NodeError, "node error -32000: header not found"),
])
def test_a_misbehaving_node_is_one_short_line(tmp_path, mode, error, words):
    with HostileNode(mode) as node:
        t0 = time.monotonic()
        with pytest.raises(error) as e:
            _connect(node, tmp_path)
        took = time.monotonic() - t0
    msg = str(e.value)
    assert words in msg or (mode == "http500" and "cannot reach" in msg), msg
    assert "\n" not in msg and len(msg) < 400, msg
    assert took < 6, f"{mode}: {took:.1f} s"


def test_a_json_rpc_error_keeps_its_code_and_is_not_retried(tmp_path):
    with HostileNode("error") as node:
        with pytest.raises(NodeError) as e:
            _connect(node, tmp_path, retry_delays_s=(0.05, 0.05, 0.05))
        assert node.requests == 1
    assert e.value.code == -32000 and e.value.node_message.startswith("header not found")


def test_a_node_that_never_answers_is_given_up_within_seconds_with_the_defaults(tmp_path):
    with HostileNode("silent") as node:
        t0 = time.monotonic()
        with pytest.raises(RpcUnavailable, match="no answer in time"):
            Chain.rpc(node.url, lock_dir=tmp_path / "locks", timeout_s=1.0)  # the default retries
        took = time.monotonic() - t0
        assert node.requests == 3
    assert took < 8, took


def test_a_nul_flood_puts_little_on_stderr(tmp_path):
    """20 MB of NUL bytes as the reply: the error printed by a process that meets it stays short."""
    with HostileNode("huge", size=20_000_000) as node:
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
                "from wallet.chain import Chain\n"
                f"Chain.rpc({node.url!r}, lock_dir={str(tmp_path)!r}, timeout_s=2.0, retry_delays_s=())\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert len(proc.stderr) < 5000, len(proc.stderr)
    assert b"over 16,777,216 bytes" in proc.stderr
