"""Render orders on OrderMarket: what goes into the order's spec document, how a miner runs a
shard, and how a buyer checks the frames it samples before paying.

- `render_order(scene, count=..., seed=..., size=...)`: the order's `job` (the canonical scene,
  frame count and seed) and the user files (meshes, images) the scene names by sha256, which
  the buyer seals and serves as the order's `assets` input.
- `QueueShardWork(queue, store, ...)`: the miner's `work` callback. Shard i renders frames
  `shard_frames(count, shards, i)` as an ordinary `render` job in the miner's own job queue, so
  the miner's scheduler runs it on its devices under its sandbox, with its limits and
  watchdog; the finished job's output folder is what the miner seals and serves. Other kinds
  of order (app.orders.train) give it their own `specs` entry and run the same way.
- `RenderSampler`: the buyer's pick of items to open before paying, chosen after the result is
  committed: the card and every file of `sample_budget(frames)` random frames (at most
  `frames_per_shard`, at most a quarter of the shard, none of a shard under 4 frames:
  `jobs.transport.sampling`, the rule the miner's key service enforces with `frame_units`).
- `QueueSampleCheck(queue, store, ...)`: the buyer's `verify` callback. It puts the opened
  sample (a partial dataset) in the store and queues a `verify-render` job with exactly those
  frames (the engine re-renders them and compares, in the buyer's sandbox: a stranger's
  files are never parsed in the app process); it answers PENDING until the job ends.

Queue job ids carry the market's address and chain, so two deployments never share one.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.fsutil import sha256_file
from jobs.artifacts import ArtifactStore, extract_tree_tar
from jobs.queue import FINAL, JobQueue, QueueError
from jobs.render.dataset_card import CARD_NAME, frame_name
from jobs.render.spec import SceneSpec, parse_scene, with_outputs
from jobs.spec import JobSpec
from jobs.transport.sampling import SAMPLE_UNITS, sample_budget

PENDING = "pending"
"""What a `verify` callback answers while its check is still running (OrderBuyer asks again)."""
ASSETS = "assets"
"""The order input holding the scene's user files, each named by its sha256."""
FRAMES_PER_SHARD = SAMPLE_UNITS
VERIFY_WALL_S = 1800
MAX_VERIFY_RUNS = 3
"""Runs of a buyer's check job before its failure counts against the miner."""
_FRAME_FILE = re.compile(r"^([a-z_]{1,16}(?:/[a-z_]{1,16})?)/(\d{6,9})\.([a-z0-9]{2,4})$")
"""A frame's file in a render dataset (images/000012.png, masks/instance/000012.png, meta/000012.json)."""


def shard_frames(count: int, shards: int, shard: int) -> tuple[int, int]:
    """(first frame, number of frames) of shard `shard` of `count` frames in `shards` shards."""
    if not (1 <= shards <= count and 0 <= shard < shards):
        raise ValueError(f"no shard {shard} of {count} frames in {shards} shards")
    n = count // shards + (1 if shard < count % shards else 0)
    return shard * (count // shards) + min(shard, count % shards), n


def render_order(scene: SceneSpec, *, count: int, seed: int | None = None,
                 size: tuple[int, int] | None = None) -> tuple[dict, list[str]]:
    """The order's job document and the sha256 of every user file the scene needs."""
    spec = with_outputs(scene, count=count, seed=seed, size=size)
    job = {"engine": "render", "scene": json.loads(spec.canonical_json()), "count": count,
           "seed": spec.outputs.seed, "spec_hash": spec.spec_hash()}
    return job, sorted(spec.content_hashes())


def _job_of(doc: dict) -> dict:
    job = doc.get("job")
    if not isinstance(job, dict) or job.get("engine") != "render":
        raise ValueError("not a render order")
    return job


def render_shard_spec(doc: dict, shard: int, inputs: dict[str, Path], store: ArtifactStore, *, job_id: str,
                      device: str, max_wall_s: int) -> JobSpec:
    """The `render` job of shard `shard` (its frames); the scene's files from the `assets` input
    are put in `store`, each checked against the sha256 it is named by."""
    job = _job_of(doc)
    start, n = shard_frames(int(job["count"]), int(doc["shards"]), shard)
    files = {}
    folder = inputs.get(ASSETS)
    if folder is not None:
        for p in sorted(Path(folder).iterdir()):
            h = sha256_file(p)
            if p.name != h:  # the buyer named a file by a hash it does not have
                raise ValueError(f"asset {p.name[:16]}… does not match its sha256")
            store.put_file(p)
            files[f"asset-{h[:16]}"] = {"sha256": h}
    return JobSpec.model_validate({
        "id": job_id, "kind": "render",
        "params": {"scene": job["scene"], "start": start, "count": n, "seed": job["seed"]},
        "inputs": files, "resources": {"device": device, "max_wall_s": max_wall_s}})


ShardSpec = Callable[..., JobSpec]
"""spec(doc, shard, inputs, store, *, job_id, device, max_wall_s) -> the queue job of a shard."""


class QueueShardWork:
    """The miner's `work(doc, shard, inputs, out)`: one job in `queue`, waited for. `specs` maps
    an order's job engine to the function that makes a shard's job (default: render only)."""

    def __init__(self, queue: JobQueue, store: ArtifactStore, *, prefix: str, device: str = "any",
                 max_wall_s: int = 6 * 3600, poll_s: float = 0.5, specs: dict[str, ShardSpec] | None = None):
        self.queue, self.store, self.prefix, self.device = queue, store, prefix, device
        self.max_wall_s, self.poll_s = max_wall_s, poll_s
        self.specs = dict(specs or {"render": render_shard_spec})
        self.stopped = threading.Event()
        """Set when the rig's miner closes (its queue with it): a shard waited for is left to the
        next start, which finds its queue job and waits for it again."""

    def job_id(self, doc: dict, shard: int) -> str:
        return f"{self.prefix}-{int(doc['order_id'])}-{shard}"

    def spec(self, doc: dict, shard: int, inputs: dict[str, Path]) -> JobSpec:
        job = doc.get("job")
        engine = job.get("engine") if isinstance(job, dict) else None
        make = self.specs.get(engine) if isinstance(engine, str) else None
        if make is None or doc.get("kind") != engine:
            raise ValueError(f"no {str(doc.get('kind'))[:32]} orders are run here")
        return make(doc, shard, inputs, self.store, job_id=self.job_id(doc, shard), device=self.device,
                    max_wall_s=self.max_wall_s)

    def __call__(self, doc: dict, shard: int, inputs: dict[str, Path], out: Path) -> None:
        spec = self.spec(doc, shard, inputs)
        try:
            self.queue.add(spec)
        except QueueError:
            rec = self.queue.get(spec.id)  # queued before a restart: wait for it (or run it again)
            if rec.state in ("failed", "cancelled"):
                self.queue.add(spec)
        while True:
            if self.stopped.is_set():
                raise RuntimeError("the miner stopped before the shard's job ended; it runs again on the next start")
            rec = self.queue.get(spec.id)
            if rec.state in FINAL:
                break
            self.stopped.wait(self.poll_s)
        if self.stopped.is_set():
            raise RuntimeError("the miner stopped before the shard's result was taken; it is taken on the next start")
        if rec.state != "succeeded" or not rec.output_sha:
            raise RuntimeError(f"the {spec.kind} job {rec.state}: {rec.reason or 'no output'}")
        shutil.rmtree(out, ignore_errors=True)
        extract_tree_tar(self.store.path(rec.output_sha), out)


def frame_units(names: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """A render result's sample plan (`KeyRing.limit_samples`): every file of a frame is one unit
    (the frame), the card is free (counts and hashes, no frame); anything else stays sealed."""
    units = {x: str(int(m.group(2))) for x in names if (m := _FRAME_FILE.match(x))}
    return units, tuple(x for x in names if x == CARD_NAME)


class RenderSampler:
    """The buyer's `pick(doc, shard, names)`: the card and all files of a few random frames of
    the shard (picked after the commitment, so the miner cannot know them); as many frames as
    `sample_budget` allows for the frames the result holds, none of a shard under 4 frames ([]:
    it cannot be checked without opening more than a quarter, so it is rejected)."""

    def __init__(self, frames_per_shard: int = FRAMES_PER_SHARD):
        self.frames_per_shard = frames_per_shard

    def __call__(self, doc: dict, shard: int, names: list[str]) -> list[str]:
        job = _job_of(doc)
        start, n = shard_frames(int(job["count"]), int(doc["shards"]), shard)
        budget = sample_budget(len(set(frame_units(names)[0].values())), self.frames_per_shard)
        if budget == 0:
            return []
        rng = secrets.SystemRandom()
        chosen = sorted(rng.sample(range(start, start + n), min(budget, n)))
        want = {frame_name(f) for f in chosen}
        picks = [CARD_NAME] if CARD_NAME in names else []
        picks += [x for x in names if (m := _FRAME_FILE.match(x)) and m.group(2) in want]
        return picks


def sampled_frames(names: list[str]) -> list[int]:
    return sorted({int(m.group(2)) for x in names if (m := _FRAME_FILE.match(x))})


class QueuedCheck:
    """A buyer `verify(doc, shard, samples)` that runs as a sandboxed job in the buyer's queue:
    PENDING until the job ends; a run that did not succeed (our worker died, a device was lost)
    is run again up to `max_runs` times before its failure counts against the miner.
    Subclasses: `_queue(qid, doc, shard, samples)` (None, or a reason to reject at once) and
    `_judge(result)` (None: good; else the reason)."""

    def __init__(self, queue: JobQueue, store: ArtifactStore, work_dir: Path, *, prefix: str,
                 max_runs: int = MAX_VERIFY_RUNS):
        self.queue, self.store, self.work_dir, self.prefix = queue, store, Path(work_dir), prefix
        self.max_runs = max_runs

    def __call__(self, doc: dict, shard: int, samples: dict[str, Path]) -> str | None:
        qid = f"{self.prefix}-{int(doc['order_id'])}-{shard}"
        try:
            rec = self.queue.get(qid)
        except QueueError:
            rec = None
        if rec is None:
            return self._queue(qid, doc, shard, samples) or PENDING
        if rec.state not in FINAL:
            return PENDING
        if rec.state != "succeeded" and rec.attempts < self.max_runs:
            self.queue.add(rec.spec)  # once more before blaming the miner
            return PENDING
        return self._judge(rec)


class QueueSampleCheck(QueuedCheck):
    """The buyer's `verify(doc, shard, samples)`: a sandboxed `verify-render` of the sampled frames."""

    def _judge(self, rec) -> str | None:
        r: Any = rec.result if rec.state == "succeeded" else None
        if not isinstance(r, dict):
            return f"the sample could not be verified: {rec.reason or rec.state}"
        if r.get("passed"):
            return None
        fails = r.get("failures") or ["it differs from its re-render"]
        return f"sampled frames {r.get('frames_checked')} do not match their re-render: {str(fails[0])[:200]}"

    def _queue(self, qid: str, doc: dict, shard: int, samples: dict[str, Path]) -> str | None:
        job = _job_of(doc)
        ds = self.work_dir / f"sample-{int(doc['order_id'])}-{shard}"
        shutil.rmtree(ds, ignore_errors=True)
        for name, path in samples.items():
            if name != CARD_NAME and not _FRAME_FILE.match(name):
                continue  # only names the sampler asks for ever reach the folder
            dest = ds / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
        spec = parse_scene(job["scene"])  # the buyer's own scene, never the miner's copy
        ds.mkdir(parents=True, exist_ok=True)
        sha = self.store.put_dir(ds)
        scene_sha = self.store.put_bytes(spec.canonical_json().encode())
        shutil.rmtree(ds, ignore_errors=True)
        inputs: dict[str, Any] = {"dataset": {"sha256": sha, "type": "dir"}, "scene": {"sha256": scene_sha}}
        inputs |= {f"asset-{h[:16]}": {"sha256": h} for h in sorted(spec.content_hashes())}
        vspec = JobSpec.model_validate({
            "id": qid, "kind": "verify-render", "seed": secrets.randbelow(2**62),
            "params": {"frames": sampled_frames(list(samples))},
            "inputs": inputs, "resources": {"device": "cpu", "max_wall_s": VERIFY_WALL_S}})
        self.queue.add(vspec)
        return None
