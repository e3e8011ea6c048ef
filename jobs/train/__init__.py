"""Training, evaluation, inference and verification of detectors and classifiers (torch).

Everything here runs in worker processes only (torch is imported at module top in the
submodules); `jobs.train.engines` holds the `run(ctx)` entry points the job runtime calls.
Untrusted inputs are data: weights are safetensors, cards and checkpoints JSON + safetensors.
"""


class TrainError(Exception):
    """A clean, one-line failure the user or buyer can act on (bad data, bad weights...)."""


BUYER_PARAMS = frozenset({"arch", "epochs", "batch", "lr", "weight_decay", "input_size", "val_fraction", "seed",
                          "augment", "eval_every", "threads", "half_weights", "max_cache_mb"})
"""TrainConfig fields a buyer may set in a train order (device, world size and the rest are the miner's)."""
