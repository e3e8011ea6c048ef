"""The Orders page's cost confirmation on an OP-stack network (pytest-qt, offscreen): the
network fee is the one `kminer market fees` computes (app.order_fees.post_fee) at the chain's
fees now, and the L1 data fee shows as its own line with its value in USD. Against anvil in
OP-stack mode with L1Block values set as a sequencer would.

With KMINER_SCREENSHOTS=DIR (under `xvfb-run -a`, QT_QPA_PLATFORM=xcb) it saves
orders-cost-confirm-op.png there."""

from __future__ import annotations

import os
from pathlib import Path

from app.order_fees import post_fee
from tests.orders.test_post_fee import p2p_over
from tests.wallet.conftest import anvil_factory  # noqa: F401  (fixture)
from tests.wallet.test_fees import L1, OP_TEST, _market, set_l1_block

NTK = 10**18


def test_the_confirmation_shows_gas_and_the_l1_part_apart(anvil_factory, qtbot, tmp_path):  # noqa: F811
    from ui.cost_dialog import ConfirmCostDialog

    node = anvil_factory(extra=("--network", "optimism"))
    chain, _om, _buyer = _market(node.url, tmp_path)
    set_l1_block(chain, L1)
    cost = p2p_over(chain, OP_TEST, tmp_path).cost(4, 10 * NTK)
    dlg = ConfirmCostDialog(cost, ok_text=f"Post for {cost.total_text()}")
    qtbot.addWidget(dlg)
    dlg.show()
    texts = [lab.text() for lab in dlg.line_labels]
    assert len(texts) == 3 and texts[0].startswith("40 NTK")
    fee = post_fee(OP_TEST, chain=chain)
    assert "158,000 gas ×" in texts[1] and texts[2].startswith("≈ ") and "at most" in texts[2]
    assert dlg.breakdown.total("ETH") == fee.total_wei and fee.l1_fee_wei > 0
    assert "NTK + ≈" in dlg.total_label.text()
    shots = os.environ.get("KMINER_SCREENSHOTS")
    if shots:
        qtbot.wait(200)
        dlg.grab().save(str(Path(shots) / "orders-cost-confirm-op.png"))
