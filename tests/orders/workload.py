"""A small, deterministic shard workload for the order tests: frame i of shard s is a
function of the order's seed, the shard, i and the input's bytes, so a buyer can recompute
any frame it samples (as render verification re-renders sampled frames) and a result that
was not computed from the order's inputs fails the check."""

from __future__ import annotations

import hashlib
from pathlib import Path

FRAMES = 6
FRAME_BYTES = 32 * 1024


def frame(seed: int, shard: int, i: int, input_digest: bytes) -> bytes:
    block = hashlib.sha256(f"{seed}:{shard}:{i}:".encode() + input_digest).digest()
    return block * (FRAME_BYTES // len(block))


def input_digest(folder: Path) -> bytes:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.read_bytes())
    return h.digest()


def work(doc: dict, shard: int, inputs: dict[str, Path], out: Path) -> None:
    digest = input_digest(inputs["scene"])
    for i in range(doc["job"]["frames"]):
        (out / f"frame_{i:03d}.bin").write_bytes(frame(doc["job"]["seed"], shard, i, digest))


def cheat(doc: dict, shard: int, inputs: dict[str, Path], out: Path) -> None:
    for i in range(doc["job"]["frames"]):
        (out / f"frame_{i:03d}.bin").write_bytes(b"\0" * FRAME_BYTES)


def verifier(scene_dir: Path):
    digest = input_digest(scene_dir)

    def verify(doc: dict, shard: int, samples: dict[str, Path]) -> str | None:
        for name, path in samples.items():
            i = int(name.removeprefix("frame_").removesuffix(".bin"))
            if path.read_bytes() != frame(doc["job"]["seed"], shard, i, digest):
                return f"{name} does not match its re-computation"
        return None

    return verify
