"""JSON from strangers (market specs, result cards, model cards, node replies), parsed with limits.

`json.loads` recurses once per nesting level in C; with web3 imported the recursion limit is
100,000, so a list nested 200,000 deep overflows the C stack (SIGSEGV) instead of raising.
`loads_bounded` therefore checks the input before the decoder sees it, in linear time and
without recursion: size, nesting depth, item count, string and number lengths. The decoder
then refuses NaN/Infinity (and numbers that overflow to infinity), duplicate keys (two
parsers could disagree on which value counts) and lone UTF-16 surrogates. Every refusal is one
`SafeJsonError` line naming what was too big or too deep.
"""

from __future__ import annotations

import json
import math
import os
import re
from itertools import accumulate
from dataclasses import dataclass, replace
from typing import IO, Any

KIB = 1 << 10
MIB = 1 << 20


class SafeJsonError(ValueError):
    """Input refused by `loads_bounded`: not JSON, or over one of its limits (one line)."""


@dataclass(frozen=True)
class JsonLimits:
    """What a decoded document may hold. Sizes are in bytes of the UTF-8 input."""

    max_bytes: int = 1 * MIB
    max_depth: int = 32
    """Arrays and objects nested inside each other (the top level counts as 1)."""
    max_items: int = 100_000
    """Array elements plus object members, in the whole document."""
    max_string_bytes: int = 64 * KIB
    """Longest string (key or value) as written, quotes and escapes included."""
    max_number_chars: int = 100
    """Longest number as written (uint256 needs 78 digits)."""
    duplicate_keys: str = "reject"
    """`reject`, or `last` (the later value wins, as json.loads does)."""

    def but(self, **changes: Any) -> "JsonLimits":
        return replace(self, **changes)


SPEC_LIMITS = JsonLimits()
"""Job and scene specs: 1 MiB, 32 levels."""
CARD_LIMITS = JsonLimits(max_bytes=4 * MIB, max_items=500_000)
"""dataset.json and model cards (a large shard's card lists a histogram and time figures)."""
ANNOTATIONS_LIMITS = JsonLimits(max_bytes=1024 * MIB, max_items=200_000_000, max_string_bytes=16 * MIB)
"""COCO annotations.json of a result (RLE masks are long strings); read inside job sandboxes."""
RPC_LIMITS = JsonLimits(max_bytes=16 * MIB, max_items=2_000_000, max_string_bytes=8 * MIB, duplicate_keys="last")
"""JSON-RPC replies (logs and blocks; contract code is a long hex string)."""

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 for b in range(256)]
_NUMBER_ONLY = bytes(b if b in b"-+0123456789.eE" else 32 for b in range(256))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _over(label: str, found: str, limit: int, unit: str) -> SafeJsonError:
    return SafeJsonError(f"{label}: {found} (the limit is {limit:,} {unit})")


def check_shape(data: bytes, limits: JsonLimits = SPEC_LIMITS, *, what: str = "JSON") -> None:
    """Refuse input over `limits` without decoding it (linear time, no recursion).

    Escaped backslashes and quotes are blanked first, so every quote left opens or closes a
    string: splitting on quotes gives the text outside strings (even parts) and the strings
    (odd parts). Up to the first byte the decoder would refuse, this is how it reads the input,
    so a document cannot nest deeper for the decoder than it does here."""
    if len(data) > limits.max_bytes:
        raise _over(what, f"too large: {len(data):,} bytes", limits.max_bytes, "bytes")
    parts = data.replace(b"\\\\", b"__").replace(b'\\"', b"__").split(b'"')
    longest = max(map(len, parts[1::2]), default=0) + 2
    if longest > limits.max_string_bytes:
        raise _over(what, f"a string of {longest:,} bytes", limits.max_string_bytes, "bytes")
    skeleton = b"".join(parts[0::2])
    brackets = skeleton.translate(None, _NOT_BRACKETS)
    opens = brackets.count(b"[") + brackets.count(b"{")
    if opens > limits.max_depth and _max_depth(brackets) > limits.max_depth:
        raise _over(what, "nested too deep", limits.max_depth, "levels")
    items = opens + skeleton.count(b",")
    if items > limits.max_items:
        raise _over(what, f"too many items: {items:,}", limits.max_items, "items")
    if max(map(len, skeleton.translate(_NUMBER_ONLY).split()), default=0) > limits.max_number_chars:
        raise _over(what, "a number written too long", limits.max_number_chars, "characters")


def _max_depth(brackets: bytes) -> int:
    """Deepest nesting of a string made only of []{}: the highest running count of opens less
    closes, which is how deep the decoder recurses before it could notice a mismatch."""
    if len(brackets) < 100_000:
        return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
    import numpy as np

    b = np.frombuffer(brackets, dtype=np.uint8)
    return int(np.cumsum(((b == 91) | (b == 123)).astype(np.int64) * 2 - 1).max())


def loads_bounded(data: bytes | bytearray | str, limits: JsonLimits = SPEC_LIMITS, *, what: str = "JSON") -> Any:
    """Decode `data` (UTF-8) within `limits`; `SafeJsonError` (one line) for anything else."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise SafeJsonError(f"{what}: holds a lone UTF-16 surrogate") from None
    else:
        raw = bytes(data)
    check_shape(raw, limits, what=what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafeJsonError(f"{what}: not UTF-8 text (byte {e.start})") from None
    text = text.removeprefix("\ufeff")
    hook = _reject_duplicates if limits.duplicate_keys == "reject" else None
    try:
        doc = json.loads(text, parse_float=_finite_float, parse_constant=_no_constant, object_pairs_hook=hook)
    except json.JSONDecodeError as e:
        raise SafeJsonError(f"{what}: not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # our hooks, or int() over sys.get_int_max_str_digits
        raise SafeJsonError(f"{what}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise SafeJsonError(f"{what}: holds a lone UTF-16 surrogate escape") from None
    return doc


def _finite_float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(f"number {s[:24]} is out of range (not a finite double)")
    return v


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no NaN or Infinity)")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup[:40]!r} in an object")
    return out


def read_capped(stream: IO[bytes], max_bytes: int, *, what: str = "input") -> bytes:
    """At most `max_bytes` from a binary stream; `SafeJsonError` if more would follow. Never
    reads more than `max_bytes + 1` bytes, however large the source."""
    from common.boundedfile import read_at_most

    data = read_at_most(stream.read, max_bytes)
    if len(data) > max_bytes:
        raise _over(what, "too large", max_bytes, "bytes")
    return data


def load_stream(stream: IO[bytes], limits: JsonLimits = SPEC_LIMITS, *, what: str = "JSON") -> Any:
    """`loads_bounded` over at most `limits.max_bytes` read from `stream`."""
    return loads_bounded(read_capped(stream, limits.max_bytes, what=what), limits, what=what)


def load_file(path: str | os.PathLike[str], limits: JsonLimits = SPEC_LIMITS, *, what: str = "JSON file",
              root: str | os.PathLike[str] | None = None, follow_symlinks: bool = False) -> Any:
    """A JSON file from a stranger: `common.boundedfile.read_bounded` (no symlinks unless
    `follow_symlinks`, regular files only, `limits.max_bytes`) then `loads_bounded`. Every
    failure is one `SafeJsonError` line naming `what` and the file."""
    from common.boundedfile import BoundedReadError, read_bounded

    try:
        data = read_bounded(path, limits.max_bytes, what=what, root=root, follow_symlinks=follow_symlinks)
    except BoundedReadError as e:
        raise SafeJsonError(str(e)) from None
    return loads_bounded(data, limits, what=f"{what} {path}")
