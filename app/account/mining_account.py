"""The local mining account: on the embedded `local` test network the job market does not
let a buyer claim their own job, yet a new user there is both the only buyer and the only
miner. So on `local` the miner signs with a second account derived from the wallet's key
(keccak of a fixed label and the key: nothing more to store or back up, and the same wallet
always gets the same mining account). See app.market_session.
"""

from __future__ import annotations

MINING_ACCOUNT_LABEL = b"knowledge-miner/local-mining-account/v1"


def local_mining_account(main_account):
    """The mining account of `main_account` (an eth-account LocalAccount) on the local chain."""
    from eth_account import Account  # deferred: eth-account takes ~1 s to load
    from eth_utils import keccak  # deferred: eth-utils takes ~0.1 s to load

    return Account.from_key(keccak(MINING_ACCOUNT_LABEL + bytes(main_account.key)))
