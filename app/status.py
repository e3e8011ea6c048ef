"""Short status lines the window's status bar shows (plain data; no Qt)."""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import Settings
from jobs.level_policy import MARKET_BASIC_RISK, market_line
from jobs.sandbox import level_report, resolve_level


@dataclass(frozen=True)
class StatusItem:
    text: str
    tooltip: str


def sandbox_status(settings: Settings) -> StatusItem:
    """Which sandbox level jobs get here, and what it does and does not enforce."""
    try:
        level = resolve_level(settings.jobs.sandbox)
    except ValueError as e:
        return StatusItem("Sandbox: misconfigured", str(e))
    rep = level_report(level)
    allow = settings.jobs.allow_market_jobs_basic
    text = market_line(level, available=rep.available, allow_market_jobs_basic=allow)  # what market jobs get
    if not rep.available:
        return StatusItem(text, rep.detail)
    lines = [rep.detail, "", "Enforced:"] + [f"  • {x}" for x in rep.enforced]
    if rep.not_enforced:
        lines += ["", "Not enforced:"] + [f"  • {x}" for x in rep.not_enforced]
    if level != "strict" and allow:
        lines += ["", MARKET_BASIC_RISK]
    return StatusItem(text, "\n".join(lines))
