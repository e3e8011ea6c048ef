"""Which jobs may run under which sandbox level: the rule, its reasons, and the risk text.

- A job from the market (a stranger's) never runs under `basic` unless the miner allowed
  it in the settings (`allow_market_jobs_basic`); the settings page shows `MARKET_BASIC_RISK`
  beside that switch.
- A job carrying buyer code (`python`) never runs under `basic` unless allowed
  (`allow_code_jobs_basic`), wherever it comes from.
- `strict` runs everything.

`refusal()` is the one check (jobs.execute applies it to every attempt); the app uses it
to say in advance why a job would not run. Pure functions; any thread.
"""

from __future__ import annotations

MARKET_BASIC_RISK = (
    "Under the basic sandbox a job is only a separate process with limits: it can read and change "
    "every file your user can (your wallet's keystore included), use your network and signal your "
    "other programs, the app among them. Market jobs come from strangers; allow them under basic "
    "only on a machine that holds nothing you need to keep.")
CODE_BASIC_RISK = (
    "Jobs that carry buyer code run that code with your user's rights under the basic sandbox.")


def refusal(level: str, *, market_job: bool, carries_code: bool, kind: str = "",
            allow_market_jobs_basic: bool = False, allow_code_jobs_basic: bool = False) -> str | None:
    """Why a job may not run under `level`, in one line; None when it may."""
    if level == "strict":
        return None
    if market_job and not allow_market_jobs_basic:
        return ("market jobs run only under the strict sandbox (install bubblewrap and libseccomp, "
                "or allow market jobs under basic in the settings)")
    if carries_code and not allow_code_jobs_basic:
        return (f"{kind or 'these'} jobs carry buyer code and run only under the strict sandbox "
                "(install bubblewrap, or allow code jobs under basic in the settings)")
    return None


def market_line(level: str, *, available: bool = True, allow_market_jobs_basic: bool = False) -> str:
    """One line for the status bar and `kminer agent`: the level and what it means for
    market jobs, e.g. "Sandbox: strict" or "Sandbox: basic (market jobs refused)"."""
    if not available:
        return f"Sandbox: {level} unavailable (market jobs refused)"
    if level == "strict":
        return "Sandbox: strict"
    if allow_market_jobs_basic:
        return "Sandbox: basic (market jobs allowed: NOT isolated)"
    return "Sandbox: basic (market jobs refused)"
