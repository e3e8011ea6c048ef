"""What an action costs, line by line, for a confirmation before it is done (posting an order,
buying a model): plain data any face can show. Amounts are integer base units (wei) of NTK or
ETH; `estimate` marks a line known only roughly (a network fee before the transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from app.amounts import eth_text, ntk_text

Unit = Literal["NTK", "ETH"]


@dataclass(frozen=True)
class CostLine:
    label: str
    amount_wei: int
    unit: Unit = "NTK"
    note: str = ""
    estimate: bool = False
    """True: "at most" / "about" (a fee before it is paid); such lines count in the totals too."""

    @property
    def text(self) -> str:
        amount = (ntk_text if self.unit == "NTK" else eth_text)(self.amount_wei, 6)
        return ("≈ " if self.estimate else "") + amount


@dataclass(frozen=True)
class CostBreakdown:
    """The lines of one action's cost; `total(unit)` sums them per unit."""

    title: str
    lines: tuple[CostLine, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Plain sentences under the table (what happens to the money, and when)."""

    def total(self, unit: Unit) -> int:
        return sum(x.amount_wei for x in self.lines if x.unit == unit)

    @property
    def units(self) -> tuple[Unit, ...]:
        return tuple(u for u in ("NTK", "ETH") if any(x.unit == u for x in self.lines))

    def total_text(self) -> str:
        """"12 NTK + ≈ 0.0001 ETH": every unit's total, "≈" where an estimate is in it."""
        parts = []
        for u in self.units:
            est = any(x.estimate for x in self.lines if x.unit == u)
            parts.append(("≈ " if est else "") + (ntk_text if u == "NTK" else eth_text)(self.total(u), 6))
        return " + ".join(parts) or "nothing"

    def with_lines(self, *lines: CostLine) -> "CostBreakdown":
        """The same breakdown with `lines` added (e.g. the network fee estimate)."""
        return replace(self, lines=self.lines + tuple(lines))
