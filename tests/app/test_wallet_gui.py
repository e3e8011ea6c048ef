"""app.account.session without Qt: input checks, exact amounts, quotes, lock state, send, history,
CSV export, and a node that is down — on the real embedded chain with a light KDF."""

from __future__ import annotations

import csv
import io
import socket

import pytest

from app.context import AppContext
from app.amounts import FieldError, check_address, check_amount, format_amount
from app.account import HistoryFilter, Locked, WalletSession, export_csv, filter_rows, rows_to_csv
from app.account import WalletService
from wallet.deploy import FAUCET_NTK_WEI
from wallet.errors import RpcUnavailable, WalletError
from wallet.keystore import Keystore

NTK = 10**18
PW = "correct horse battery"
OTHER = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55 test vector
TYPO = OTHER.replace("886E0F", "886e0F")  # one letter's case changed: the checksum fails


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def session():
    ctx = AppContext.open()
    ks = Keystore(ctx.paths.keystore_dir, scrypt_n=2**10, allow_weak_kdf=True)
    address = ks.create(PW)
    ctx.settings.wallet.account = address
    with WalletService(ctx, keystore=ks, passwords=[lambda a: PW]) as svc:
        svc.deployment()  # what the first-run flow does: deploy and fund on the new local chain
    s = WalletSession(ctx, keystore=ks, retry_delays_s=(0.05,))
    yield s
    s.close()


def test_address_checks_accept_checksummed_and_lowercase_and_refuse_typos():
    assert check_address(OTHER) == OTHER
    assert check_address(OTHER.lower()) == OTHER
    assert check_address("  " + OTHER + " ") == OTHER
    with pytest.raises(FieldError, match="checksum") as e:
        check_address(TYPO)
    assert e.value.field == "to"
    for bad in ("", "0x1234", OTHER[2:] + "00", "0x" + "g" * 40):
        with pytest.raises(FieldError):
            check_address(bad)


def test_amounts_are_exact_integers_and_formatting_never_rounds():
    assert check_amount("1.5") == 15 * 10**17
    assert check_amount("1,000") == 1000 * NTK
    assert check_amount("0.000000000000000001") == 1
    assert check_amount("1000000000000.000000000000000001") == 10**30 + 1  # beyond 28 digits: still exact
    for bad, why in (("", "Enter"), ("0", "more than zero"), ("-1", "more than zero"), ("abc", "Not a number"),
                     ("nan", "Not a number"), ("0.0000000000000000001", "decimal places")):
        with pytest.raises(FieldError, match=why):
            check_amount(bad)
    assert format_amount(10**30 + 1) == "1,000,000,000,000.000000000000000001"
    assert format_amount(12 * NTK, group=False) == "12"
    assert format_amount(None) == "–"


def test_locked_wallet_shows_balances_and_refuses_wrong_password(session):
    snap = session.snapshot()
    assert (snap.network, snap.chain_id, snap.embedded, snap.unlocked) == ("local", 27501, True, False)
    assert snap.ntk_wei == FAUCET_NTK_WEI and snap.eth_wei > 0
    with pytest.raises(FieldError, match="Wrong password") as e:
        session.unlock("not it")
    assert e.value.field == "password"
    assert not session.snapshot().unlocked
    session.unlock(PW)
    assert session.snapshot().unlocked
    session.lock()
    assert not session.snapshot().unlocked


def test_send_quote_checks_funds_and_sends_exact_amounts(session):
    with pytest.raises(FieldError, match="Insufficient funds") as e:
        session.quote(OTHER, str(FAUCET_NTK_WEI // NTK + 1))
    assert e.value.field == "amount"
    with pytest.raises(FieldError, match="checksum"):
        session.quote(TYPO, "1")
    q = session.quote(OTHER.lower(), "12.000000000000000001")
    assert (q.to, q.amount_wei, q.asset) == (OTHER, 12 * NTK + 1, "NTK")
    assert 21_000 < q.gas < 90_000 and q.gas_price_wei > 0 and q.fee_wei <= q.max_fee_wei
    before = session.snapshot()
    with pytest.raises(Locked):
        session.send(q)
    with pytest.raises(FieldError, match="Wrong password"):
        session.send(q, password="nope")
    assert session.snapshot().ntk_wei == before.ntk_wei  # nothing was sent
    res = session.send(q, password=PW)
    after = session.snapshot()
    assert after.ntk_wei == before.ntk_wei - (12 * NTK + 1)
    assert before.eth_wei - after.eth_wei == res.fee_wei > 0
    assert not after.unlocked  # a password given for one send does not unlock the wallet
    eth_q = session.quote(OTHER, "0.5", "ETH")
    session.unlock(PW)
    session.send(eth_q)
    assert session.service.chain.balance_wei(OTHER) == 5 * 10**17


def test_history_rows_filters_and_csv_export(session, tmp_path):
    session.unlock(PW)
    session.send(session.quote(OTHER, "3"))
    rows = session.history()
    out = [r for r in rows if r.direction == "out"]
    assert [(r.event, r.amount_wei, r.counterparty) for r in out] == [("Transfer", 3 * NTK, OTHER)]
    faucet = [r for r in rows if r.direction == "in"]
    assert faucet and faucet[-1].amount_wei == FAUCET_NTK_WEI
    assert filter_rows(rows, HistoryFilter(direction="out")) == out
    assert filter_rows(rows, HistoryFilter(text=OTHER.lower()[:10])) == out
    assert filter_rows(rows, HistoryFilter(kind="job")) == []
    path = export_csv(rows, tmp_path / "history.csv")
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(table) == len(rows)
    sent = next(t for t in table if t["direction"] == "out")
    assert (sent["amount"], sent["amount_wei"], sent["counterparty"]) == ("3", str(3 * NTK), OTHER)
    assert rows_to_csv([]).strip().split(",")[0] == "time_utc"
    assert not list(tmp_path.glob(".history.csv.*"))  # no temp file left behind


def test_eth_the_wallet_sent_is_in_the_history_exactly_once(session, tmp_path):
    session.unlock(PW)
    session.send(session.quote(OTHER, "3"))
    res = session.send(session.quote(OTHER, "0.000000000000000007", "ETH"))
    session.record_eth_sent(res, OTHER, 7)  # recorded again (e.g. a retry): still one row
    rows = session.history()
    eth = [r for r in rows if r.asset == "ETH"]
    assert [(r.event, r.direction, r.amount_wei, r.counterparty, r.tx_hash) for r in eth] == \
        [("EthSent", "out", 7, OTHER, res.tx_hash)]
    assert rows[0] is eth[0]  # newest first, merged with the NTK rows by block
    assert filter_rows(rows, HistoryFilter(text="eth")) == eth
    assert [r.asset for r in filter_rows(rows, HistoryFilter(kind="transfer", direction="out"))] == ["ETH", "NTK"]
    table = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert (table[0]["amount"], table[0]["asset"], table[0]["amount_wei"]) == ("0.000000000000000007", "ETH", "7")
    # another network's sends are not shown here
    other = session.sent_log.rows(session.service.chain.chain_id + 1, session.service.address)
    assert other == []


def test_rpc_down_is_an_error_and_switching_back_works(session):
    session.unlock(PW)
    dev_url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(RpcUnavailable, match="is the node running"):
        session.switch_network("devnet", dev_url)
    with pytest.raises(RpcUnavailable):
        session.snapshot()  # retry: still down
    with pytest.raises(WalletError, match="sepolia needs an RPC URL: set it in Settings"):
        session.switch_network("sepolia")  # devnet's URL is never tried on another network
    snap = session.switch_network("local")
    assert snap.chain_id == 27501 and snap.unlocked  # the key stays unlocked across the switch
    # each network keeps its own URL: devnet's comes back with devnet, also after a restart
    ws = session.ctx.settings.wallet
    assert ws.rpc_url is None and ws.url_for("devnet") == dev_url and ws.url_for("sepolia") is None
    from app.settings import SettingsStore

    saved = SettingsStore(session.ctx.paths.settings_file).load().settings.wallet
    assert saved.network == "local" and saved.url_for("devnet") == dev_url
    with pytest.raises(RpcUnavailable):
        session.switch_network("devnet")
    assert session.service.rpc_url == dev_url and ws.rpc_url == dev_url


def test_job_payments_show_as_job_rows_with_the_market_named(session):
    session.unlock(PW)
    svc = session.service
    market = svc.market()
    deadline = svc.chain.latest_timestamp() + 3600
    job_id, _ = market.post(session.signer(), kind="render", spec_hash=b"\x01" * 32, spec_uri="file:///spec.json",
                            reward_wei=7 * NTK, deadline=deadline, review_window_s=600)
    rows = session.history()
    jobs = filter_rows(rows, HistoryFilter(kind="job"))
    assert [(r.event, r.direction, r.amount_wei, r.job_id, r.counterparty_label) for r in jobs] == [
        ("JobPosted", "out", 7 * NTK, job_id, "Job market")]
    assert filter_rows(rows, HistoryFilter(kind="transfer", direction="out")) == []  # the escrow is that row
    assert filter_rows(rows, HistoryFilter(text=f"job {job_id}")) == jobs
    ids, _ = market.post_shards(session.signer(), kind="render", spec_hashes=[b"\x02" * 32, b"\x03" * 32],
                                spec_uris=["file:///a.json", "file:///b.json"], reward_each_wei=2 * NTK,
                                deadline=deadline, review_window_s=600)
    shards = session.history()[0]
    assert (shards.event, shards.count, shards.job_id, shards.amount_wei, shards.direction) == (
        "JobPosted", 2, ids[0], 4 * NTK, "out")


def test_signer_needs_the_password_while_locked(session):
    with pytest.raises(Locked):
        session.signer()
    with pytest.raises(FieldError, match="Wrong password"):
        session.signer("nope")
    assert session.signer(PW).address == session.service.address
    assert not session.service.is_unlocked()


def test_keyring_unlocks_once_at_start_and_a_lock_sticks(session):
    assert session.unlock(PW, remember=True)  # the test keyring (a file backend) holds it now
    again = WalletSession(session.ctx, keystore=session.keystore)
    session.close()  # one process holds the local chain at a time
    try:
        assert again.snapshot().unlocked  # opted in: unlocked from the keyring at start
        again.lock()
        assert not again.snapshot().unlocked  # and a Lock is not undone by the next refresh
        assert again.unlock_from_keyring() and again.snapshot().unlocked
    finally:
        again.close()
