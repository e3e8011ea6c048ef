"""Order fixtures: the OrderMarket on the in-memory chain (tests.wallet), a buyer and a miner
each with its own home folder and transport peer on 127.0.0.1, the miner staked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.wallet.conftest import _order_module, order_env  # noqa: F401  (fixtures)

NTK = 10**18


@dataclass
class Parties:
    env: object
    buyer: object  # OrderBuyer
    miner: object  # OrderMiner
    scene: Path

    def run(self, until, *, steps: int = 400, also=None) -> list[str]:
        """Step both sides until `until()` is true; every event line, for the failure message."""
        import time

        log: list[str] = []
        for _ in range(steps):
            log += self.buyer.step()
            log += self.miner.step()
            if also:
                also()
            if until():
                return log
            time.sleep(0.05)
        raise AssertionError("not reached; events:\n" + "\n".join(log))


@pytest.fixture
def parties(order_env, tmp_path):
    from app.orders import OrderBuyer, OrderMiner, Peer
    import tests.orders.workload as workload

    env = order_env
    env.om.deposit_stake(env.payout, env.miner.address, 50 * NTK)
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "scene.json").write_text('{"objects": 3}')
    made = []

    def make(work=workload.work, buyer_kw=None, miner_cls=OrderMiner, **kw):
        bp = Peer.open(tmp_path / "buyer", host="127.0.0.1", identity_key=bytes(env.buyer.key))
        mp = Peer.open(tmp_path / "miner", host="127.0.0.1", identity_key=bytes(env.miner.key))
        b = OrderBuyer(env.om, env.buyer, bp, tmp_path / "buyer", desk_host="127.0.0.1",
                       verify=workload.verifier(scene), **(buyer_kw or {}))
        m = miner_cls(env.om, env.miner, env.payout.address, mp, tmp_path / "miner", work=work,
                       redeem_after_s=kw.pop("redeem_after_s", 0), **kw)
        made.append((b, bp, mp))
        return Parties(env, b, m, scene)

    yield make
    for b, bp, mp in made:
        b.close()
        bp.close()
        mp.close()
