"""The rig's stake on the order market (app.stake), what the CLI and the GUI's Stake
dialog both call, on the real OrderMarket of the in-memory chain: the status with what a
typical order needs, one-line refusals of bad amounts that change nothing, approve + stake,
unstake with the contract's unbonding delay, withdraw after it; and the fee of each priced
from the measured gas table at the chain's own fees."""

from __future__ import annotations

import inspect

import pytest

from app.account import MarketSigner
from app.amounts import FieldError
from app.order_fees import stake_fee
from app.stake import (
    DEFAULT_STAKE_BPS, StakeActions, check_stake_amount, check_unstake_amount, claim_stake_wei, stake_need_wei,
)
from tests.wallet.conftest import _order_module, order_env  # noqa: F401  (fixtures)
from wallet.fees import ORDER_GAS, FeeEstimator
from wallet.networks import Network

NTK = 10**18
NET = Network("test", None, embedded=True, label="in-memory chain")


def actions(env, *, payer=None):
    from wallet.market import MarketClient

    market = MarketClient(env.chain, env.deployment)
    signer = MarketSigner(env.miner, env.payout.address, "mining-key")
    pay = payer or env.payout
    return StakeActions(market=lambda: market, signer=lambda: signer, payer=lambda: pay,
                        payer_address=lambda: pay.address, network=lambda: NET)


def test_the_default_claim_stake_is_the_buyers_default():
    from app.orders.buyer import OrderBuyer

    from app.orders.service import MIN_STAKE_WEI as SERVICE_MIN
    from app.stake import MIN_STAKE_WEI

    assert inspect.signature(OrderBuyer.post).parameters["stake_bps"].default == DEFAULT_STAKE_BPS
    assert MIN_STAKE_WEI == SERVICE_MIN  # the dialog's "no stake" is the miner's
    assert claim_stake_wei() == 2 * NTK and stake_need_wei() == 8 * NTK  # 4 claims of 10 NTK shards, a fifth each


def test_stake_unstake_withdraw_change_the_stake_on_chain(order_env):  # noqa: F811
    env = order_env
    acts = actions(env)
    st = acts.status()
    b = st.balance_wei
    assert b == env.balance(env.payout) and b >= 100 * NTK and b % NTK == 0
    assert (st.active_wei, st.can_pay) == (0, True)
    assert st.problem and st.short_wei == 8 * NTK and st.unbond_delay_s == 14 * 86_400

    # bad amounts: one line each, and nothing on chain moves
    block = env.chain.w3.eth.block_number
    for text, said in (("", "Enter an amount."), ("abc", "Not a number: 'abc'."), ("0", "more than zero"),
                       ("-3", "more than zero"), (f"{b // NTK}.5", f"More than your {b // NTK:,} NTK."), ("1e-30", "decimal places")):
        with pytest.raises(FieldError) as e:
            check_stake_amount(text, st)
        assert said in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FieldError, match="Stake between 0 and your"):
        acts.stake(b + 1)
    assert env.chain.w3.eth.block_number == block and env.om.stake(env.miner.address, env.payout.address).active_wei == 0

    # the first stake needs an approval and a new slot: both are priced
    cost = acts.cost("stake", 50 * NTK, st)
    price = FeeEstimator(env.chain, NET).gas_price().per_gas_wei
    assert cost.total("NTK") == 50 * NTK
    assert cost.total("ETH") == (ORDER_GAS["approve"] + ORDER_GAS["stake_first"]) * price
    assert cost.total("ETH") == stake_fee(NET, "stake", approve=True, first=True, chain=env.chain).total_wei
    assert [x.label for x in cost.lines] == ["stake (from your wallet)", "network fee (approval + stake)"]
    assert any("14 days" in n for n in cost.notes)

    after = acts.stake(50 * NTK)
    assert env.om.stake(env.miner.address, env.payout.address).active_wei == 50 * NTK
    assert after.active_wei == 50 * NTK and after.balance_wei == b - 50 * NTK and after.problem is None
    assert after.claims_covered == 25 and after.short_wei == 0
    # the approval was for exactly the stake (spent now): the next one approves again, into a slot in use
    price = FeeEstimator(env.chain, NET).gas_price().per_gas_wei  # the base fee moved with the blocks
    assert acts.cost("stake", 10 * NTK).total("ETH") == (ORDER_GAS["approve"] + ORDER_GAS["stake_more"]) * price

    # unstake: more than staked is refused; then it unbonds for the contract's delay
    with pytest.raises(FieldError, match="More than the 50 NTK staked"):
        check_unstake_amount("51", after)
    st = acts.unstake(20 * NTK)
    assert (st.active_wei, st.withdrawing_wei) == (30 * NTK, 20 * NTK)
    assert st.unlock_at == st.now + 14 * 86_400 and not st.withdrawable and "unbonding for 14 days" in st.summary()
    with pytest.raises(ValueError, match="unbonds for 14 days more"):
        acts.withdraw()
    env.travel(14 * 86_400 + 5)
    st = acts.withdraw()
    assert (st.active_wei, st.withdrawing_wei, st.balance_wei) == (30 * NTK, 0, b - 30 * NTK)
    with pytest.raises(ValueError, match="nothing is unbonding"):
        acts.withdraw()


def test_no_coin_for_the_fee_is_said_before_anything_is_sent(order_env):  # noqa: F811
    from eth_account import Account
    from wallet.market import MarketClient

    env = order_env
    poor = Account.create()
    env.om.token.mint(env.accounts[0], poor.address, 10 * NTK)
    market = MarketClient(env.chain, env.deployment)
    signer = MarketSigner(env.miner, poor.address, "mining-key")
    acts = StakeActions(market=lambda: market, signer=lambda: signer, payer=lambda: poor,
                        payer_address=lambda: poor.address, network=lambda: NET)
    st = acts.status()
    assert st.eth_wei == 0 and check_stake_amount("5", st) == 5 * NTK
    with pytest.raises(ValueError, match=r"^the network fee \(about 0\.\d+ ETH\) is more than the 0 ETH of 0x"):
        acts.cost("stake", 5 * NTK, st)


def test_only_the_payout_account_can_stake(order_env):  # noqa: F811
    env = order_env
    env.om.token.mint(env.accounts[0], env.payout.address, 10 * NTK)
    acts = actions(env, payer=env.stranger)
    assert not acts.status().can_pay
    with pytest.raises(ValueError, match="the rig is paid to 0x"):
        acts.stake(5 * NTK)
    assert env.om.stake(env.miner.address, env.payout.address).active_wei == 0


@pytest.mark.slow
def test_the_cli_stakes_unstakes_and_refuses_bad_amounts_in_one_line(tmp_path):
    """`kminer wallet stake|unstake|withdraw-stake` on the embedded chain: the same use case,
    one process per command (about 5 s each)."""
    from tests.wallet.test_cli_flow import Party

    me = Party(tmp_path / "me", "correct horse battery")
    me.run("wallet", "create")
    for args, said in ((("stake", "0"), "The amount must be more than zero"),
                       (("stake", "2000000", "--yes"), "More than your 1,000,000 NTK"),
                       (("withdraw-stake", "--yes"), "nothing is unbonding: unstake first")):
        r = me.run("wallet", *args, ok=False)
        assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    out = me.json("wallet", "stake", "12", "--yes")
    assert out["stake_wei"] == str(12 * NTK) and out["miner"] == out["payout"]
    out = me.json("wallet", "unstake", "2", "--yes")
    assert (out["stake_wei"], out["withdrawing_wei"]) == (str(10 * NTK), str(2 * NTK))
