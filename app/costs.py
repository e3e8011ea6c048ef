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


# --- network fees in the user's currency ---------------------------------------------------

COIN_PRICES_FILE = "coin_prices.json"


def reference_coin_usd(symbol: str) -> float | None:
    """The bundled reference price of a fee coin (ETH, POL) in USD, or None when there is none
    (resources/data/coin_prices.json: planning figures, not market data)."""
    import json

    from app.resources import resource_path

    try:
        doc = json.loads(resource_path("data", COIN_PRICES_FILE).read_text(encoding="utf-8"))
        v = doc["usd"].get(symbol)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e9 else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def usd_text(amount_wei: int, coin_usd: float | None) -> str:
    """'≈ $1.23' for an amount of a coin with 18 decimals at `coin_usd` ('≈ $0.0028' under a
    cent, '< $0.0001' below that); '' without a price."""
    if coin_usd is None:
        return ""
    usd = amount_wei / 10**18 * coin_usd
    if usd >= 0.01 or usd == 0:
        return f"≈ ${usd:,.2f}"
    return f"≈ ${usd:.2g}" if usd >= 0.0001 else "< $0.0001"

