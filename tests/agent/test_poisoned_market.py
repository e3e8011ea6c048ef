"""A poisoned market at the miner (issue 16), on a real EVM with the real miner service that
`kminer agent` runs: a job whose spec is a list nested 200,000 deep (with its correct hash)
is skipped with a recorded reason and the honest job behind it is claimed; a poison scene (a
billion objects, NaN, Infinity) is refused before claiming; a stranger's input URI naming a
loopback service or a file of the rig is refused. web3 is loaded here, as in the agent, so its
recursion limit of 100,000 holds: a plain json.loads of the deep spec would overflow the C stack."""

from __future__ import annotations

import json
import sys
import time

from tests.agent.conftest import render_spec_bytes, step_until
from wallet.market import JobStatus

DEEP_SPEC = b"[" * 200_000 + b"]" * 200_000


def _decisions(svc) -> dict[int, tuple[str, str]]:
    return {d.job_id: (d.decision, d.reason) for d in reversed(svc.pricing_decisions(1000))}


def test_a_deeply_nested_spec_is_skipped_and_the_honest_job_behind_it_is_claimed(world):
    assert sys.getrecursionlimit() >= 100_000  # web3 is loaded: the crash of the issue is possible here
    poisoned = world.post(DEEP_SPEC, name="deep.json")  # with its correct hash: it is fetched and checked
    honest = world.post(render_spec_bytes(frames=1), reward_ntk=2)
    t0 = time.perf_counter()
    svc = world.service()
    end = time.monotonic() + 120
    while svc.row(honest) is None and time.monotonic() < end:
        svc.step(start=False)
    took = time.perf_counter() - t0
    assert svc.row(honest) is not None and world.market.job(honest).miner == world.miner.address
    decision, reason = _decisions(svc)[poisoned]
    assert decision == "skipped" and "unusable spec" in reason and "nested too deep" in reason
    assert world.market.job(poisoned).status == JobStatus.OPEN  # never claimed
    print(f"\n[figure] start to the honest job's claim, behind a 200,000-deep spec: {took:.2f} s")
    assert step_until(svc, honest, {"submitted"}, timeout_s=180) == "submitted"
    q = svc.queue.get(svc.queue_id(honest)).spec.resources
    assert q.max_wall_s < 600 and q.max_silent_s is not None  # limits from the work estimate, not the deadline


def _scene_spec(**scene_changes) -> bytes:
    spec = json.loads(render_spec_bytes(frames=1))
    scene = spec["params"]["scene"]
    for key, value in scene_changes.items():
        scene[key] = {**scene[key], **value}
    return json.dumps(spec, sort_keys=True).encode()


def test_poison_scenes_are_refused_before_claiming(world):
    layout = json.loads(render_spec_bytes())["params"]["scene"]["layout"]
    billion = world.post(_scene_spec(layout={**layout, "objects": [10**9, 10**9]}), name="billion.json")
    nan = world.post(_scene_spec(camera={"distance": [1.0, 1.5]}).replace(b"[1.0, 1.5]", b"[NaN, 1.5]"), name="nan.json")
    inf = world.post(_scene_spec(camera={"distance": [1.0, 1.5]}).replace(b"[1.0, 1.5]", b"[1.0, 1e999]"),
                     name="inf.json")
    frames = world.post(render_spec_bytes(frames=9_000_000, width=4096, height=4096), name="pixels.json")
    svc = world.service()
    for _ in range(2):
        svc.step(start=False)
    why = _decisions(svc)
    for job in (billion, nan, inf, frames):
        assert svc.row(job) is None and world.market.job(job).status == JobStatus.OPEN, why.get(job)
        assert why[job][0] == "skipped" and "unusable spec" in why[job][1], why[job]
    assert "layout.objects: both ends must lie within" in why[billion][1]
    assert "NaN is not allowed" in why[nan][1] and "out of range" in why[inf][1]
    assert "split the order into more shards" in why[frames][1]


def test_a_strangers_input_uri_may_not_name_a_loopback_service_or_a_rig_file(world, monkeypatch):
    """On a public network (not a local market), a spec's inputs come only from public hosts
    and the shared folders: never 127.0.0.1 (a service of the rig) nor a file of the rig."""
    import hashlib

    secret = world.tmp / "rig-secret.txt"
    secret.write_bytes(b"the rig's private notes")
    sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    spec = json.loads(render_spec_bytes(frames=1))
    loopback = world.post(json.dumps({**spec, "inputs": {"x": {"sha256": sha, "uri": "http://127.0.0.1:9/x"}}}).encode(),
                          name="loop.json")
    local = world.post(json.dumps({**spec, "inputs": {"x": {"sha256": sha, "uri": secret.as_uri()}}}).encode(),
                       name="local.json")
    monkeypatch.setattr("app.miner.service.local_market", lambda chain: False)  # as on a public network
    svc = world.service()
    for j in (loopback, local):  # the specs themselves (file URIs here) are in the store already
        svc.claims.store.fetch(world.market.job(j).spec_hash[2:], world.market.job(j).spec_uri)
    for _ in range(2):
        svc.step(start=False)
    why = _decisions(svc)
    assert why[loopback][0] == "skipped" and "loopback" in why[loopback][1], why[loopback]
    assert why[local][0] == "skipped" and "local files outside the shared folders" in why[local][1], why[local]
    assert sha[:6] not in why[local][1]


def test_under_basic_market_jobs_are_not_claimed_unless_allowed_and_the_agent_says_so(world):
    """Issue 15: a market job is a stranger's; under basic it could read the wallet. The miner
    claims nothing there (a claimed job it refuses to run would fail) until the user allows it."""
    world.ctx.settings.jobs.sandbox = "basic"
    job = world.post(render_spec_bytes(frames=1))
    svc = world.service()
    assert svc.sandbox_line() == "Sandbox: basic (market jobs refused)"
    svc.step(start=False)
    assert svc.row(job) is None and world.market.job(job).status == JobStatus.OPEN
    decision, reason = _decisions(svc)[job]
    assert decision == "refused" and "only under the strict sandbox" in reason
    world.ctx.settings.jobs.allow_market_jobs_basic = True
    svc.job_settings_changed()
    assert svc.sandbox_line() == "Sandbox: basic (market jobs allowed: NOT isolated)"
    assert step_until(svc, job, {"submitted"}, timeout_s=180) == "submitted"
    (att,) = svc.queue.attempts(svc.queue_id(job))
    assert att.sandbox == "basic"
