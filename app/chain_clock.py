"""Chain time as the miner and the buyer read it, and a way to move it on a chain that makes
blocks only for transactions.

Deadlines and review windows are judged by block timestamps. The embedded chain and a local
dev node (anvil/hardhat, chain id 31337) make a block only when a transaction comes, so their
time stands still while nothing happens; once the wall clock is past a moment that matters,
`ChainClock` makes an empty block stamped now. Public networks make their own blocks.
Threading: the one thread that owns the chain client.
"""

from __future__ import annotations

import time

DEV_CHAIN_ID = 31337
"""anvil's and hardhat's chain id: a local dev node that mines only for transactions."""


class ChainClock:
    """`now`: the chain's time as last read (unix seconds of the latest block)."""

    def __init__(self, chain):
        from wallet.embedded import empty_block_miner  # deferred: loads py-evm and web3 (~1 s)

        self.chain = chain
        self.now = 0
        self._mine_empty = empty_block_miner(chain.w3)

    def refresh(self) -> int:
        """Read the chain's time again (one RPC call)."""
        self.now = self.chain.latest_timestamp()
        return self.now

    def catch_up(self, t: float) -> None:
        """If chain time has not passed `t` but the wall clock has (by a second, so a block made
        now is stamped after `t`), make a block where we may and read the time again."""
        if self.now <= t and time.time() >= t + 1 and self.nudge():
            self.refresh()

    def past(self, t: float) -> bool:
        """True when chain time (read now) is past `t`, after catching up where we may."""
        self.refresh()
        self.catch_up(t)
        return self.now > t

    def nudge(self) -> bool:
        """Make a block stamped now on a chain that mines only for transactions; True if one was made."""
        if self._mine_empty is not None:
            self._mine_empty()
            return True
        if self.chain.chain_id != DEV_CHAIN_ID:
            return False
        resp = self.chain.read(lambda: self.chain.w3.provider.make_request("evm_mine", []))
        return "error" not in resp
