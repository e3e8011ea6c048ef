"""The fee a buyer sees before posting an order is one estimate everywhere
(app.order_fees.post_fee): `kminer market fees` prices it at a network's reference fees, the
GUI's confirmation (app.p2p_orders.P2POrders.cost) at the connected chain's fees now, from the
same measured gas table, and on an OP-stack network both carry the L1 data fee, shown apart.
Against anvil in OP-stack mode (L1Block values set as a sequencer would) and plain anvil."""

from __future__ import annotations

from pathlib import Path

from app.order_fees import order_fee, post_fee
from app.p2p_orders import P2POrders
from tests.wallet.conftest import anvil, anvil_factory  # noqa: F401  (fixtures)
from tests.wallet.test_fees import L1, OP_TEST, PLAIN_TEST, _market, charged_l1_fee, set_l1_block
from wallet.fees import ORDER_GAS, ORDER_TX_BYTES, FeeEstimator
from wallet.networks import get_network
from wallet.order_market import OrderTerms

NTK = 10**18


def p2p_over(chain, net, tmp_path: Path) -> P2POrders:
    return P2POrders(orders_dir=lambda: tmp_path, open_buyer=lambda: None, chain=lambda: chain,
                     available=lambda: True, network=lambda: net)


def test_the_confirmation_shows_the_l1_data_fee_on_op_stack(anvil_factory, tmp_path):  # noqa: F811
    node = anvil_factory(extra=("--network", "optimism"))
    chain, om, buyer = _market(node.url, tmp_path)
    set_l1_block(chain, L1)
    fee = post_fee(OP_TEST, chain=chain)
    price = FeeEstimator(chain, OP_TEST).gas_price()
    assert fee.gas == ORDER_GAS["approve"] + ORDER_GAS["post_order"]
    assert fee.execution_wei == fee.gas * price.per_gas_wei
    assert fee.l1_fee_wei == L1.fee_upper_bound_wei(ORDER_TX_BYTES["approve"]) + L1.fee_upper_bound_wei(
        ORDER_TX_BYTES["post_order"])

    cost = p2p_over(chain, OP_TEST, tmp_path).cost(4, 10 * NTK)
    labels = [x.label for x in cost.lines]
    assert labels == ["escrow: 4 × reward", "network fee (post + approval)", "L1 data fee (OP stack)"]
    assert cost.total("NTK") == 40 * NTK and cost.total("ETH") == fee.total_wei
    assert "gas ×" in cost.lines[1].note and "$" in cost.lines[2].note and any("$" in n for n in cost.notes)

    # the L1 part is an upper bound: what the node charged for the post's data stays under it
    terms = OrderTerms("render", "0x" + "ab" * 32, "http://127.0.0.1:9/desk", 4, NTK, chain.latest_timestamp() + 3600,
                       600, 600)
    l1_paid, _ = charged_l1_fee(chain, buyer.address, lambda: om.post_order(buyer, terms)[1])
    assert 0 < l1_paid <= L1.fee_upper_bound_wei(ORDER_TX_BYTES["post_order"])


def test_off_op_stack_there_is_no_l1_line_and_the_cli_shares_the_function(anvil, tmp_path):  # noqa: F811
    chain, _om, _buyer = _market(anvil.url, tmp_path)
    cost = p2p_over(chain, PLAIN_TEST, tmp_path).cost(2, NTK)
    assert [x.label for x in cost.lines] == ["escrow: 2 × reward", "network fee (post + approval)"]
    assert cost.total("ETH") == (ORDER_GAS["approve"] + ORDER_GAS["post_order"]) * \
        FeeEstimator(chain, PLAIN_TEST).gas_price().per_gas_wei
    base = get_network("base")  # `kminer market fees`: the same function at the reference fees
    assert order_fee(base).post_wei == post_fee(base).total_wei and post_fee(base).l1_fee_wei > 0
