"""The app's own rig on the embedded chain (test money, one user, who deployed the contracts).

There the wallet mines through the mining account derived from it, so the user's own orders can
be taken by this machine (a buyer cannot claim its own). That account needs gas from the wallet
and a stake on the order market; both come from test money: ETH the wallet holds and NTK it
mints. One place for the desktop app (app.market_session) and `kminer agent`.
"""

from __future__ import annotations

MINING_GAS_WEI = 10 * 10**18  # test ETH sent to the mining account when it runs low
LOCAL_STAKE_WEI = 50 * 10**18  # test NTK minted and staked for it on the order market


def fund_gas(wallet, chain, signer):
    """Send the derived mining account gas from the wallet (`wallet.signer()`) when it holds less
    than a tenth of MINING_GAS_WEI. The transaction's result (for the wallet's history), or None
    when nothing was sent. *(chain)*"""
    if signer.source != "local-mining-account" or chain.balance_wei(signer.address) >= MINING_GAS_WEI // 10:
        return None
    return chain.transact(wallet.signer(), to=signer.address, value_wei=MINING_GAS_WEI, gas=21_000,
                          what="gas for the local mining account")


def stake(wallet, market, runner, signer) -> bool:
    """On the embedded chain, stake freshly minted test NTK for a mining signer paid to this
    wallet when the order market would refuse its claims for want of stake (the wallet's
    balance does not change). True when staked. *(chain)*"""
    if not market.chain.embedded or runner.stake_problem() is None:
        return False
    me = wallet.signer()
    if me.address.lower() != signer.payout.lower():
        return False
    market.token.mint(me, me.address, LOCAL_STAKE_WEI)
    runner.om.deposit_stake(me, signer.address, LOCAL_STAKE_WEI)
    return True
