"""Market kinds beyond render: specs name their inputs (sha256 + uri); the miner fetches them
into its artifact store before it claims, and skips (with a logged reason) what it cannot
fetch or use. The event scan reads no job state the events do not say changed."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.runtime import resolve_uri as _resolve
from jobs.artifacts import ArtifactStore
from tests.agent.conftest import NTK, render_spec_bytes, step_until
from wallet.market import JobStatus


def _train_spec(inputs: dict, *, kind: str = "train", params: dict | None = None) -> bytes:
    spec = {"id": "t", "kind": kind, "params": params if params is not None else {"arch": "centernet-xs", "epochs": 1, "batch": 8, "threads": 1},
            "inputs": inputs, "resources": {"device": "cpu", "max_wall_s": 600}}
    return json.dumps(spec, sort_keys=True).encode()


@pytest.fixture
def shapes_tar(world):
    """A tiny COCO dataset in the buyer's artifact store: (sha, absolute file uri)."""
    from jobs.train.synthetic import make_shapes_dataset

    ds = make_shapes_dataset(world.tmp / "buyer" / "shapes", n_images=8, size=(64, 48), seed=1)
    store = ArtifactStore(world.tmp / "buyer" / "store")
    sha = store.put_dir(ds)
    return sha, store.path(sha).as_uri()


def test_relative_input_uris_are_relative_to_the_spec():
    assert _resolve("data/x.tar", "file:///srv/specs/a.json") == "file:///srv/specs/data/x.tar"
    assert _resolve("x.tar", "https://host/jobs/a.json") == "https://host/jobs/x.tar"
    assert _resolve("s3://b/x", "file:///a.json") == "s3://b/x" and _resolve(None, "file:///a.json") is None


def test_jobs_whose_inputs_cannot_be_had_are_skipped_with_a_reason_never_claimed(world, shapes_tar):
    sha, uri = shapes_tar
    missing = world.tmp / "buyer" / "late.tar"
    wrong = world.tmp / "buyer" / "wrong.tar"
    wrong.write_bytes(b"not the dataset")
    late_id = world.post(_train_spec({"shapes": {"sha256": sha, "uri": missing.as_uri(), "type": "dir"}}), kind="train")
    bad_id = world.post(_train_spec({"shapes": {"sha256": sha, "uri": wrong.as_uri(), "type": "dir"}}), kind="train")
    kind_id = world.post(_train_spec({"shapes": {"sha256": sha, "uri": uri, "type": "dir"}}), kind="verify")
    junk = world.tmp / "buyer" / "junk.bin"
    junk.write_bytes(b"a file, not a folder archive")
    junk_id = world.post(_train_spec({"shapes": {"sha256": hashlib.sha256(junk.read_bytes()).hexdigest(),
                                                 "uri": junk.as_uri(), "type": "dir"}}), kind="train")
    svc = world.service(backoff_first_s=0.05)
    for _ in range(3):
        svc.step()
    for j in (late_id, bad_id, kind_id, junk_id):
        assert svc.row(j) is None and world.market.job(j).status == JobStatus.OPEN
    why = {d.job_id: (d.decision, d.reason) for d in reversed(svc.pricing_decisions())}
    assert why[bad_id][0] == "skipped" and "input 'shapes'" in why[bad_id][1] and "hash mismatch" in why[bad_id][1]
    assert why[kind_id][0] == "skipped" and "'train' is not a verify job" in why[kind_id][1]
    assert why[junk_id][0] == "skipped" and "not a folder archive" in why[junk_id][1]
    assert why[late_id][0] == "retry" and "input 'shapes'" in why[late_id][1]
    # the dataset shows up at its uri: the retried job is claimed
    missing.write_bytes((world.tmp / "buyer" / "store" / sha[:2] / sha).read_bytes())
    assert step_until(svc, late_id, {"running", "claimed"}, timeout_s=30) in ("running", "claimed")
    assert world.market.job(late_id).status == JobStatus.CLAIMED
    claim = next(d for d in svc.pricing_decisions() if d.job_id == late_id and d.decision == "claim")
    assert "1 epochs x 8 images" in claim.reason and claim.expected_s > 0 and claim.device_key == "cpu"
    assert svc.store.has(sha)  # fetched into the miner's own store before the claim


def test_the_scan_reads_job_state_only_when_events_say_it_changed(world):
    reads = []
    real_job = world.market.job
    world.market.job = lambda i: reads.append(i) or real_job(i)
    world.ctx.settings.device("cpu").price_floor_ntk_per_hour = 10**9
    ids = [world.post(render_spec_bytes(frames=1 + i)) for i in range(3)]
    svc = world.service()
    for _ in range(3):
        svc.step()
    assert reads == []  # open jobs come from JobPosted events, not from reading every job
    below = [d for d in svc.pricing_decisions() if d.decision == "below floor"]
    assert sorted(d.job_id for d in below) == ids  # each logged once, not every pass
    world.ctx.settings.device("cpu").price_floor_ntk_per_hour = 0.0
    assert step_until(svc, ids[0], {"submitted"}) == "submitted"
    n = len(reads)
    for _ in range(3):
        svc.step(claim=False)
    assert len(reads) == n  # a submitted job waiting for its buyer is not read each pass
    tx = world.market.accept(world.buyer, ids[0]).tx_hash
    assert step_until(svc, ids[0], {"paid"}, claim=False) == "paid"
    assert reads[n:] == [ids[0]]  # the JobAccepted event: one read
    assert svc.row(ids[0]).tx_paid == tx
    view = svc.jobs_table()[0]
    assert (view.job_id, view.state, view.kind, view.buyer, view.reward_wei, view.device_key) == \
        (ids[0], "paid", "render", world.buyer.address, NTK, "cpu")
    assert view.claimed_at <= view.first_progress_at <= view.uploaded_at <= view.paid_at


@pytest.mark.slow
def test_train_then_verify_and_infer_jobs_run_on_fetched_inputs(world, shapes_tar):
    sha, uri = shapes_tar
    # a relative uri: the dataset sits beside the spec file
    (world.tmp / "buyer" / "shapes.tar").write_bytes((world.tmp / "buyer" / "store" / sha[:2] / sha).read_bytes())
    train_id = world.post(_train_spec({"shapes": {"sha256": sha, "uri": "shapes.tar", "type": "dir"}}), kind="train",
                          reward_ntk=2)
    svc = world.service()
    assert step_until(svc, train_id, {"submitted", "failed"}, timeout_s=300) == "submitted", svc.row(train_id)
    model_sha = world.market.job(train_id).result_hash.removeprefix("0x")
    model_uri = world.market.job(train_id).result_uri
    verify_id = world.post(_train_spec({"model": {"sha256": model_sha, "uri": model_uri, "type": "dir"},
                                        "held": {"sha256": sha, "uri": uri, "type": "dir"}},
                                       kind="verify-train", params={"tolerance": 1.0}), kind="verify")
    img = world.tmp / "buyer" / "shapes" / "images"
    photo = sorted(img.iterdir())[0]
    infer_id = world.post(_train_spec({"model": {"sha256": model_sha, "uri": model_uri, "type": "dir"},
                                       "photo": {"sha256": hashlib.sha256(photo.read_bytes()).hexdigest(),
                                                 "uri": photo.as_uri()}}, kind="infer", params={}), kind="infer")
    for j in (verify_id, infer_id):
        assert step_until(svc, j, {"submitted", "failed"}, timeout_s=60) == "submitted", svc.row(j).reason
    kinds = {r.job_id: (r.kind, r.engine) for r in svc.rows()}
    assert kinds == {train_id: ("train", "train"), verify_id: ("verify", "verify-train"), infer_id: ("infer", "infer")}
    for j in (train_id, verify_id, infer_id):
        assert len(svc.queue.attempts(svc.queue_id(j))) == 1


def test_an_order_markets_train_shard_is_priced_by_the_image_count_its_order_names(world):
    """A train order's data arrives only after the claim: the quote takes its declared size."""
    from jobs.spec import JobSpec

    spec = JobSpec.model_validate(json.loads(_train_spec({})))
    svc = world.service()
    svc.poll_devices()
    deadline = world.chain.latest_timestamp() + 3600
    assert "image count" in svc.quote_spec(1, None, "train", NTK, deadline, spec)
    assert svc.quote_spec(1, None, "train", NTK, deadline, spec, images=16) is None
    world.ctx.settings.device("cpu").price_floor_ntk_per_hour = 1e9
    assert "below floor" in svc.quote_spec(1, None, "train", NTK, deadline, spec, images=16)
