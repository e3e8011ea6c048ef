"""The photoreal engine is an optional component (issues 22/23): on a rig without it the
miner does not offer photoreal renders. On a real EVM with the real miner service: a photoreal
render order is refused with the one line that says the engine is missing and how to add it
(never claimed, so it cannot fail at the buyer's cost), while a fast render beside it is
claimed. "Not installed" is made with `sys.modules["bpy"] = None`, which the real check
(importlib's find_spec) reads as a missing module whether or not this venv has bpy."""

from __future__ import annotations

import json
import sys

from tests.agent.conftest import render_spec_bytes
from wallet.market import JobStatus


def _photoreal_spec() -> bytes:
    spec = json.loads(render_spec_bytes(frames=1))
    spec["params"]["scene"]["engine"] = "photoreal"
    spec["params"]["scene"]["photoreal"] = {"samples": 4}
    return json.dumps(spec, sort_keys=True).encode()


def test_without_the_engine_a_photoreal_order_is_refused_with_the_one_line_and_a_fast_one_claimed(world, monkeypatch):
    monkeypatch.setitem(sys.modules, "bpy", None)
    photo = world.post(_photoreal_spec(), name="photo.json", reward_ntk=50)
    fast = world.post(render_spec_bytes(frames=1), name="fast.json", reward_ntk=2)
    svc = world.service()
    for _ in range(3):
        svc.step(start=False)
    why = {d.job_id: (d.decision, d.reason) for d in reversed(svc.pricing_decisions(100))}
    assert svc.row(photo) is None and world.market.job(photo).status == JobStatus.OPEN
    decision, reason = why[photo]
    assert decision == "refused", why
    assert reason.startswith("photoreal engine not installed: ") and "photoreal" in reason.split(":", 1)[1]
    assert "\n" not in reason and len(reason) < 200
    assert svc.row(fast) is not None and world.market.job(fast).miner == world.miner.address
