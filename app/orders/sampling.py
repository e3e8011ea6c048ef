"""What of an order's result its buyer may open before paying, by the order's kind.

`sample_plan(doc, names)` is the plan the miner gives its key service for a result
(`KeyRing.limit_samples`: which items form which unit, which are free); the buyer's samplers
(`RenderSampler`, `ModelPicker`) ask for what the same plan and `jobs.transport.sampling.
sample_budget` allow. Kinds without a plan: each item is one unit.
"""

from __future__ import annotations

from jobs.transport.sampling import MIN_SAMPLED_UNITS
from app.orders.render import frame_units
from app.orders.train import model_units


def sample_plan(doc: dict, names: list[str]) -> tuple[dict[str, str], tuple[str, ...]] | None:
    """(item -> unit, free items) of a result of the order `doc` (its spec document), or None; by
    the job's engine, as the miner runs it (`QueueShardWork`) and the buyer samples it."""
    job = doc.get("job")
    engine = job.get("engine") if isinstance(job, dict) else None
    if engine != doc.get("kind"):
        return None
    if engine == "render":
        return frame_units(names)
    if engine == "train":
        return model_units(names)
    return None


def too_small_to_sample(job: dict, shards: int) -> str | None:
    """Why an order of `job` in `shards` shards cannot be checked before payment (a render shard
    of fewer than MIN_SAMPLED_UNITS frames: even one frame of it is more than the quarter a buyer
    may open), or None: the buyer refuses to post it, a miner to claim it."""
    count = job.get("count") if job.get("engine") == "render" else None
    if isinstance(count, int) and shards >= 1 and count // shards < MIN_SAMPLED_UNITS:
        most = (f"{count} frames make at most {count // MIN_SAMPLED_UNITS} shard(s)" if count >= MIN_SAMPLED_UNITS
                else f"an order needs at least {MIN_SAMPLED_UNITS} frames")
        return (f"a render shard needs at least {MIN_SAMPLED_UNITS} frames (a buyer may open at most a quarter of "
                f"a shard's frames before paying, so a smaller shard cannot be checked): {most}")
    return None
