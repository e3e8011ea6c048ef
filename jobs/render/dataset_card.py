"""Reading a delivered render dataset's card (dataset.json) and frame metadata: stranger data.

A miner's result is read by the buyer's verifier and merge, and by `kminer order watch`; a card
nested 200,000 deep used to kill that process. Here every file is read without following
links, capped (common.boundedfile) and decoded with limits (common.safejson), and the fields
the buyer relies on are checked for type and range, so later code can index them without
meeting a list where it expects a dict. Every problem is one `CardError` line.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path
from typing import Any

from common.safejson import CARD_LIMITS, MIB, SafeJsonError, load_file, loads_bounded, read_capped
from jobs.render.spec import MAX_FRAMES

CARD_FORMAT = "kminer-render-dataset"
CARD_NAME = "dataset.json"
META_LIMITS = CARD_LIMITS.but(max_bytes=1 * MIB)
MAX_RANGES = 10_000
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FILE_DIRS = {"rgb": ("images", ("png", "jpg")), "depth": ("depth", ("png",)),
              "instance": ("masks/instance", ("png",)), "semantic": ("masks/semantic", ("png",))}


class CardError(ValueError):
    """A dataset card or frame metadata file that is missing, malformed or out of range."""


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_card(card: Any, where: str = CARD_NAME) -> dict:
    """`card` if it is a render dataset card whose checked fields are sound, else CardError."""
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise CardError(f"{where} is not a Knowledge Miner render card")
    if not isinstance(card.get("spec_hash"), str) or not _HEX64.match(card["spec_hash"]):
        raise CardError(f"{where}: spec_hash is not a sha256")
    if not _is_int(card.get("seed"), 0, 2**63 - 1):
        raise CardError(f"{where}: seed is not a whole number within [0, 2^63)")
    ranges = card.get("frame_ranges")
    if not isinstance(ranges, list) or not 1 <= len(ranges) <= MAX_RANGES or not all(
            isinstance(r, list) and len(r) == 2 and _is_int(r[0], 0, MAX_FRAMES) and _is_int(r[1], r[0] + 1, MAX_FRAMES)
            for r in ranges):
        raise CardError(f"{where}: frame_ranges is not a list of [start, end) frame pairs")
    counts = card.get("counts")
    if not isinstance(counts, dict) or not all(_is_int(v, 0, 2**53) for v in counts.values()):
        raise CardError(f"{where}: counts is not a table of whole numbers")
    t = card.get("time")
    if not isinstance(t, dict) or not isinstance(t.get("seconds"), (int, float)) or not isinstance(t.get("started_utc"), str):
        raise CardError(f"{where}: time lacks seconds or started_utc")
    if not isinstance(card.get("software", {}), dict):
        raise CardError(f"{where}: software is not a table")
    return card


def read_card(d: Path) -> dict:
    """The card of dataset folder `d` (dataset.json, no links followed below `d`)."""
    try:
        card = load_file(Path(d) / CARD_NAME, CARD_LIMITS, what="dataset card", root=d)
    except SafeJsonError as e:
        if "file not found" in str(e):
            raise CardError(f"{d} is not a finished dataset (no dataset.json)") from None
        raise CardError(str(e)) from None
    return check_card(card, f"{d}/{CARD_NAME}")


def card_from_tar(path: Path) -> dict:
    """The card of a stored dataset (a folder artifact is a tar), read without unpacking the
    rest: a regular `dataset.json` member of at most CARD_LIMITS.max_bytes, checked."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            try:
                m = tar.getmember(CARD_NAME)
            except KeyError:
                raise CardError("the result holds no dataset.json") from None
            if not m.isreg() or m.size > CARD_LIMITS.max_bytes:
                raise CardError(f"dataset.json is not a regular file of at most {CARD_LIMITS.max_bytes:,} bytes")
            f = tar.extractfile(m)
            assert f is not None
            data = read_capped(f, CARD_LIMITS.max_bytes, what="dataset.json")
    except tarfile.TarError as e:
        raise CardError(f"the result is not a readable dataset folder ({e})") from None
    try:
        return check_card(loads_bounded(data, CARD_LIMITS, what="dataset.json"))
    except SafeJsonError as e:
        raise CardError(str(e)) from None


def frame_name(i: int) -> str:
    return f"{i:06d}"


def read_metas(d: Path, card: dict) -> list[dict]:
    """The frame metadata of every frame the card lists, each checked to be that frame's and
    to name only its own files (images/000123.png...), never a path out of the folder."""
    metas = []
    for a, b in card["frame_ranges"]:
        for i in range(a, b):
            rel = f"meta/{frame_name(i)}.json"
            try:
                m = load_file(Path(d) / rel, META_LIMITS, what=f"frame {i} metadata", root=d)
            except SafeJsonError as e:
                raise CardError(str(e)) from None
            metas.append(check_meta(m, i))
    return metas


def check_meta(m: Any, i: int) -> dict:
    """`m` if it is frame `i`'s metadata naming only frame `i`'s own files, else CardError."""
    if not isinstance(m, dict) or m.get("frame") != i:
        raise CardError(f"frame {i}: its metadata is not that frame's")
    files = m.get("files")
    if not isinstance(files, dict) or not isinstance(m.get("annotations", []), list):
        raise CardError(f"frame {i}: metadata lacks its files or annotations")
    for kind, rel in files.items():
        folder, exts = _FILE_DIRS.get(kind, ("", ()))
        if not isinstance(rel, str) or rel not in {f"{folder}/{frame_name(i)}.{e}" for e in exts}:
            raise CardError(f"frame {i}: metadata names an unexpected file for {str(kind)[:20]!r}")
    return m
