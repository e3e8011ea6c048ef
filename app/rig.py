"""The rig's readiness from live services: gathers app.readiness.RigFacts (the market signer,
the node, the market, the sandbox level, the devices and their floors, the signer's gas) and
applies the one rule, app.readiness.rig_readiness.

Used by the desktop app's market session (every pass, on the chain runner) and by
`kminer agent` (every pass). What the caller already knows (the signer it opened, the node
error it hit) is passed in, so nothing is asked twice. Blocks on the chain: run it on the
thread that owns the wallet service.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from app.account import LOW_GAS_WEI, MarketSigner, NoMarketSigner, WalletService, market_signer
from app.context import AppContext
from app.floors import floor_is_set
from app.readiness import Readiness, RigFacts, rig_readiness
from jobs.sandbox import resolve_level, strict_problem
from wallet.errors import NotDeployed, RpcUnavailable, WalletError

log = logging.getLogger(__name__)

__all__ = ["check_rig", "rig_facts", "Readiness"]


def _label(state: Any) -> str:
    info = state.info
    return info.id if info.id == "cpu" else f"{info.name} ({info.id})"


def rig_facts(ctx: AppContext, svc: WalletService, states: Iterable[Any], *, signer: MarketSigner | None = None,
              signer_error: NoMarketSigner | None = None, ask: bool = False,
              sandbox: str | None = None) -> tuple[RigFacts, MarketSigner | None]:
    """The facts now, and the signer found (None when none can sign). `states`: the devices'
    DeviceState list. signer / signer_error: what the caller's own lookup gave (else it is
    looked up here, asking the wallet's password providers only if `ask`). sandbox: the level
    the miner was told to use (`kminer agent --sandbox`), else the setting's."""
    if signer is None and signer_error is None:
        try:
            signer = market_signer(svc, ask=ask)
        except NoMarketSigner as e:
            signer_error = e
    states = list(states)
    mining = [s for s in states if s.active]
    js = ctx.settings.jobs
    try:
        level = resolve_level(sandbox or js.sandbox)
        available = level != "strict" or strict_problem() is None
    except ValueError:
        level, available = sandbox or js.sandbox, False
    facts = dict(
        signer_problem=signer_error.reason if signer_error else None,
        signer_fix=signer_error.fix if signer_error else "",
        signer_source=signer.source if signer else None,
        network=svc.network.name,
        sandbox_level=level, sandbox_available=available,
        allow_market_jobs_basic=bool(getattr(js, "allow_market_jobs_basic", False)),
        mining_devices=tuple(_label(s) for s in mining),
        auto_waiting=tuple(_label(s) for s in states if s.mode == "auto" and not s.active),
        devices_without_floor=tuple(_label(s) for s in mining if not floor_is_set(ctx.settings, s.info.key)),
        low_gas_wei=LOW_GAS_WEI["embedded" if svc.network.embedded else "rpc"],
    )
    try:
        svc.chain.chain_id
        try:
            svc.deployment(bootstrap=False)
        except NotDeployed:
            facts["market_deployed"] = False
        if signer is not None:
            facts["signer_eth_wei"] = svc.chain.balance_wei(signer.address)
    except RpcUnavailable as e:
        facts["node_problem"] = str(e)
    except WalletError as e:  # a wrong chain id, a refused URL: the node cannot be used as it is
        facts["node_problem"] = str(e)
    return RigFacts(**facts), signer


def check_rig(ctx: AppContext, svc: WalletService, states: Iterable[Any], **kw) -> Readiness:
    """`rig_readiness(rig_facts(...))`: ready for jobs, or the one reason and its fix."""
    facts, _ = rig_facts(ctx, svc, states, **kw)
    return rig_readiness(facts)
