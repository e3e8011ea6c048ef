"""How much of a sealed result its buyer may open before paying: the one rule both sides use.

A result is made of *units* (a render shard's frames; for content without a plan, each item
alone). The buyer's sampler (app.orders: `RenderSampler`, the default pick) asks for
`sample_budget(units)` of them, and the key service (`keys.KeyRing.answer`) refuses any
request that would open more, counted over everything that buyer opened of that content.
So the budget is at most a quarter of a result's units, never more (a result of fewer than 4
units cannot be sampled at all: one unit of it would be more than a quarter):

    sample_budget(n) = 0                   for n < MIN_SAMPLED_UNITS (4)
                     = min(k, n // 4)      otherwise (k = SAMPLE_UNITS by default)

Items a plan names `free` (a render card: counts and hashes, no frame) are outside the budget;
items of no unit and not free stay sealed until payment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SAMPLE_UNITS = 3
"""Units a buyer samples of each result (the protocol's k): the most the key service releases."""
MIN_SAMPLED_UNITS = 4
"""A result of fewer units cannot be checked before payment without opening more than a quarter."""


def sample_budget(units: int, wanted: int = SAMPLE_UNITS) -> int:
    """How many of a result's `units` may be opened before payment (see the module doc)."""
    if units < MIN_SAMPLED_UNITS or wanted < 1:
        return 0
    return min(wanted, units // MIN_SAMPLED_UNITS)


def sample_refusal(opened: Iterable[str], items: Iterable[str], units: Mapping[str, str] | None,
                   free: Iterable[str] = (), wanted: int = SAMPLE_UNITS) -> str | None:
    """Why opening `opened` (every item one buyer asked for so far) of content holding `items`
    breaks the rule, or None. `units` maps an item to its unit (None: each item is one)."""
    names = list(items)
    unit_of = dict(units) if units is not None else {n: n for n in names}
    free_set = set(free)
    n = len(set(unit_of.values()))
    budget = sample_budget(n, wanted)
    used = set()
    for item in opened:
        if item in free_set:
            continue
        if item not in unit_of:
            return f"item {item!r} stays sealed until payment"
        used.add(unit_of[item])
    if len(used) > budget:
        if budget == 0:
            return f"a result of {n} unit(s) cannot be sampled before payment"
        return f"at most {budget} of this result's {n} units may be opened before payment (asked: {len(used)})"
    return None
