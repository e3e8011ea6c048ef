"""Deploying a market on a network, for whoever runs one (`kminer market deploy`): the plan
with its estimated cost first (gas x today's fee, the L1 data fee on OP-stack chains, in the
network's coin and in USD), then the transactions and the deployments file the app reads
(`<data>/chain/deployment-<chain id>.json`, found by WalletService and app.market_networks).

Test networks get our own NTK (with its faucet); main networks pay in a token the user
confirms (`token`): no bridged NTK is official, and on Ethereum the official NTK is named so
the user can compare. Threading: as WalletService (one thread; the calls block on the node).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.amounts import format_amount
from app.costs import reference_coin_usd, usd_text
from app.market_networks import NO_OFFICIAL_BRIDGED_NTK
from wallet.deploy import Deployment, check_token, deploy_market, estimate_deploy, save_deployment
from wallet.errors import WalletError


@dataclass(frozen=True)
class DeployPlan:
    network: str
    label: str
    chain_id: int
    sender: str
    token: str | None
    """The token the markets will pay in; None: our test NTK is deployed first."""
    costs: tuple  # wallet.fees.Cost, one per contract
    coin: str
    coin_usd: float | None
    balance_wei: int
    notes: tuple[str, ...] = ()

    @property
    def total_wei(self) -> int:
        return sum(c.total_wei for c in self.costs)

    @property
    def l1_fee_wei(self) -> int:
        return sum(c.l1_fee_wei for c in self.costs)

    @property
    def gas(self) -> int:
        return sum(c.gas for c in self.costs)

    def _coin(self, wei: int) -> str:
        return f"{format_amount(wei, max_decimals=8)} {self.coin}"

    def text(self) -> str:
        """The estimate as a person reads it before confirming."""
        pay = "our test NTK (deployed first)" if self.token is None else self.token
        lines = [f"Deploying the markets on {self.label}, chain {self.chain_id}, from {self.sender}, paying in {pay}:"]
        for c in self.costs:
            l1 = f" + L1 data fee {self._coin(c.l1_fee_wei)}" if c.l1_fee_wei else ""
            lines.append(f"  {c.action:<20} {c.gas:>10,} gas  {self._coin(c.execution_wei)}{l1}")
        usd = usd_text(self.total_wei, self.coin_usd)
        l1 = f", of which L1 data fee {self._coin(self.l1_fee_wei)}" if self.l1_fee_wei else ""
        lines.append(f"  estimated total: {self.gas:,} gas, ≈ {self._coin(self.total_wei)}{l1}"
                     + (f" ({usd} at ${self.coin_usd:,.2f}/{self.coin})" if usd else " (no USD price for "
                        f"{self.coin}: give --coin-usd)"))
        lines.append(f"  your balance: {self._coin(self.balance_wei)}")
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def as_json(self) -> dict:
        return {"network": self.network, "chain_id": self.chain_id, "sender": self.sender, "token": self.token,
                "gas": self.gas, "total_wei": str(self.total_wei), "l1_fee_wei": str(self.l1_fee_wei),
                "coin": self.coin, "coin_usd": self.coin_usd,
                "total_usd": None if self.coin_usd is None else round(self.total_wei / 10**18 * self.coin_usd, 6),
                "contracts": [{"action": c.action, "gas": c.gas, "execution_wei": str(c.execution_wei),
                               "l1_fee_wei": str(c.l1_fee_wei)} for c in self.costs],
                "notes": list(self.notes)}


def plan_deploy(svc, *, token: str | None = None, coin_usd: float | None = None) -> DeployPlan:
    """Check the network and token and estimate the deployment from `svc`'s account
    (a WalletService on a JSON-RPC network). `WalletError` (one line) when it cannot be done."""
    net = svc.network
    if net.embedded:
        raise WalletError("the local chain deploys its own market on first start")
    chain = svc.chain
    sender = svc.address
    token = check_token(chain, net, token)
    notes = []
    if token is not None:
        if net.ntk_address and token.lower() != net.ntk_address.lower():
            notes.append(f"Note: {token} is not the official NTK on {net.label} ({net.ntk_address}).")
        elif not net.ntk_address:
            notes.append(NO_OFFICIAL_BRIDGED_NTK)
    try:
        costs = estimate_deploy(chain, net, sender, token=token)
    except WalletError:
        raise
    except Exception as e:  # the node refused to estimate (out of funds, a revert): one line
        raise WalletError(f"the node could not estimate the deployment: {str(e).splitlines()[0][:200]}") from None
    price = coin_usd if coin_usd is not None else reference_coin_usd(net.native_symbol)
    return DeployPlan(network=net.name, label=net.label or net.name, chain_id=chain.chain_id, sender=sender,
                      token=token, costs=tuple(costs), coin=net.native_symbol, coin_usd=price,
                      balance_wei=chain.balance_wei(sender), notes=tuple(notes))


def deploy_markets(svc, plan: DeployPlan) -> tuple[Deployment, Path]:
    """Send the transactions of `plan` and write the deployments file; (deployment, its path).
    Refuses before sending anything when the account holds less than the estimate."""
    chain = svc.chain
    if chain.chain_id != plan.chain_id or svc.network.name != plan.network:
        raise WalletError("the network changed since the estimate; estimate again")
    have = chain.balance_wei(plan.sender)
    if have < plan.total_wei:
        raise WalletError(f"{plan.sender} holds {format_amount(have, max_decimals=8)} {plan.coin}; the deployment "
                          f"needs about {format_amount(plan.total_wei, max_decimals=8)} {plan.coin}: nothing was sent")
    dep = deploy_market(chain, svc.signer(plan.sender), svc.network, token=plan.token)
    path = save_deployment(svc.ctx.paths.chain_dir, dep)
    return dep, path
