"""Whether the rig can claim market jobs now, or the one reason it cannot and its fix.

`rig_readiness(facts)` is the one rule the device cards, the tray, the window's banner and
`kminer agent` all show: "ready for jobs" only when a key can sign claims, the node answers,
a market is deployed, the sandbox level may run market jobs, a device is set to mine and
every such device has a price floor; otherwise the first failing check, in that order, as a
`Readiness` with a one-line reason and a one-line fix (and the command that fixes it from a
terminal, where there is one). The facts are gathered by app.rig; this module is pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobs.level_policy import refusal

Code = Literal["ready", "no-signer", "offline", "no-market", "sandbox", "no-device", "no-floor", "no-gas"]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    code: Code
    reason: str
    """One line: "Ready for jobs" or why the rig claims nothing."""
    fix: str = ""
    """One line: what to do in the app ("" when ready)."""
    command: str = ""
    """The same from a terminal (`kminer ...`), where there is such a command."""

    @property
    def text(self) -> str:
        return self.reason if self.ready else f"{self.reason}. {self.fix}"


@dataclass(frozen=True)
class RigFacts:
    """What the readiness rule looks at (gathered by app.rig.rig_facts)."""

    signer_problem: str | None
    """None when a key can sign claims; else why not (app.account.NoMarketSigner.reason)."""
    signer_fix: str = ""
    signer_source: str | None = None
    """"mining-key", "wallet" or "local-mining-account" when one signs."""
    network: str = "local"
    node_problem: str | None = None
    """Why the node did not answer (None when it did)."""
    market_deployed: bool = True
    sandbox_level: str = "strict"
    sandbox_available: bool = True
    allow_market_jobs_basic: bool = False
    mining_devices: tuple[str, ...] = ()
    """Labels of the devices set to mine now (mining, or auto while the user is away)."""
    auto_waiting: tuple[str, ...] = ()
    """Labels of devices in auto mode waiting for the user to be away."""
    devices_without_floor: tuple[str, ...] = ()
    signer_eth_wei: int | None = None
    low_gas_wei: int = 0


READY_TEXT = "Ready for jobs"


def rig_readiness(f: RigFacts) -> Readiness:
    """See the module docstring."""
    if f.signer_problem is not None:
        return Readiness(False, "no-signer", f"Not mining: {_clause(f.signer_problem)}",
                         _sentence(f.signer_fix or "Create a mining key on the Wallet page, or unlock the wallet"),
                         "kminer wallet mining-key create")
    if f.node_problem is not None:
        return Readiness(False, "offline", f"Not mining: the {f.network} node does not answer ({_clause(f.node_problem)})",
                         "Start the node, or choose another network on the Wallet page",
                         f"kminer agent --network NAME (or start the {f.network} node)")
    if not f.market_deployed:
        return Readiness(False, "no-market", f"Not mining: there is no job market on {f.network}",
                         "Choose a network that has one on the Wallet page", "kminer market deploy (test networks)")
    why = refusal(f.sandbox_level if f.sandbox_available else "basic", market_job=True, carries_code=False,
                  allow_market_jobs_basic=f.allow_market_jobs_basic)
    if why is not None:
        return Readiness(False, "sandbox", f"Not mining: market jobs need the strict sandbox, and this machine has "
                                           f"{f.sandbox_level if f.sandbox_available else 'only basic'}",
                         "Install bubblewrap and libseccomp (or allow market jobs under basic in Settings → Jobs, "
                         "which does not isolate them)", "sudo apt-get install bubblewrap libseccomp2")
    if not f.mining_devices:
        if f.auto_waiting:
            return Readiness(False, "no-device", "Waiting: devices in Auto mine once you are away",
                             "Set a device to Mining to take jobs while you use the computer",
                             "kminer devices set-mode ID mining")
        return Readiness(False, "no-device", "Not mining: no device is set to mine",
                         "Set a device to Mining or Auto on the Devices page", "kminer devices set-mode ID mining")
    if f.devices_without_floor:
        names = ", ".join(f.devices_without_floor)
        return Readiness(False, "no-floor", f"Not mining: no price floor on {names}",
                         "Set one on its card on the Devices page",
                         "kminer settings set devices.KEY.price_floor_ntk_per_hour N")
    if f.signer_eth_wei is not None and f.signer_eth_wei < f.low_gas_wei:
        who = "the mining key" if f.signer_source == "mining-key" else "the mining account"
        return Readiness(False, "no-gas", f"Not mining: {who} has too little ETH for fees",
                         "Fund it from the Wallet page (Mining key → Rotate gives a funded key)",
                         "kminer wallet send --asset ETH --to KEY --amount 0.005")
    n = len(f.mining_devices)
    return Readiness(True, "ready", f"{READY_TEXT}: {n} device{'s' if n != 1 else ''} mining")


def _clause(text: str) -> str:
    """`text` as the middle of a sentence: no trailing full stop."""
    return text.strip().rstrip(".")


def _sentence(text: str) -> str:
    t = _clause(text)
    return t[:1].upper() + t[1:]
