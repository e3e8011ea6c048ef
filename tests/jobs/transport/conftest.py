"""Fixtures: network namespaces (tests/netlab.py) and the transport CLI run inside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netlab import both_behind_nat, one_behind_nat, pair, why_no_netlab

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def netpair():
    """(lab, addr of 'a', addr of 'b'): two namespaces on one veth; skips with the reason."""
    reason = why_no_netlab()
    if reason:
        pytest.skip(f"no network namespaces here: {reason}")
    lab, a, b = pair()
    yield lab, a, b
    lab.close()


def _nat(make):
    reason = why_no_netlab(nat=True)
    if reason:
        pytest.skip(f"no NAT lab here: {reason}")
    lab = make()
    yield lab
    lab.close()


@pytest.fixture
def nat_one():
    """'a' behind a masquerading router 'na', 'b' outside and reachable."""
    yield from _nat(one_behind_nat)


@pytest.fixture
def natlab():
    """'a' and 'b' each behind its own masquerading router, 'pub' between them."""
    yield from _nat(both_behind_nat)


def transport(lab, role: str, *args: str, **kw) -> subprocess.Popen:
    """`python -m jobs.transport ARGS` inside namespace `role`, from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return lab.popen(role, [sys.executable, "-m", "jobs.transport", *args], cwd=ROOT, env=env,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_status(home: Path, pred, timeout_s: float = 30) -> dict:
    """The node's status.json once `pred(doc)` holds (polls; fails the test on timeout)."""
    deadline = time.monotonic() + timeout_s
    doc: dict = {}
    while time.monotonic() < deadline:
        try:
            doc = json.loads((home / "status.json").read_text())
            if pred(doc):
                return doc
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"status in {home} never got there: {doc}")


def stop(p: subprocess.Popen) -> tuple[str, str]:
    p.terminate()
    try:
        return p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.communicate()
