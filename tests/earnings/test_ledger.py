"""The earnings ledger on real SQLite: payments joined to devices by job id, energy integration."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from app.earnings import Ledger, LedgerConflict
from wallet.indexer import Event

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 11, 21, 0, 0, tzinfo=UTC).timestamp()
TX1 = "0x" + "ab" * 32
TX2 = "0x" + "cd" * 32
GPU = "GPU-5e2a7f0c-3d1b-4c8e-9a61-2f7d0b9c3070"
NTK = 10**18


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite", tz=UTC)
    yield led
    led.close()


def event(name, job_id, to, amount, tx, ts=T0, block=1, idx=0):
    return Event(block=block, log_index=idx, tx_hash=tx, contract="JobMarket", name=name, job_id=job_id,
                 from_addr=None, to_addr=to, amount_wei=amount, timestamp=int(ts), args={})


def test_record_payment_is_idempotent_on_job_and_tx(ledger):
    ledger.assign_job(7, GPU, at=T0)
    assert ledger.record_payment(7, TX1.upper().replace("0X", "0x"), 3 * NTK, timestamp=T0) is True
    assert ledger.record_payment(7, TX1, 3 * NTK, timestamp=T0) is False
    assert ledger.record_payment(7, bytes.fromhex("ab" * 32), 3 * NTK, timestamp=T0) is False  # same tx as bytes
    assert [(p.job_id, p.tx_hash, p.device_key, p.amount_wei, p.day) for p in ledger.payments()] == [
        (7, TX1, GPU, 3 * NTK, "2026-11-20")]
    with pytest.raises(LedgerConflict):
        ledger.record_payment(7, TX1, 4 * NTK, timestamp=T0)
    assert ledger.total_wei(GPU) == 3 * NTK


def test_amounts_beyond_64_bits_stay_exact(ledger):
    big = 2**70 + 12345
    ledger.record_payment(1, TX1, big, timestamp=T0, device_key="cpu")
    ledger.record_payment(2, TX2, big, timestamp=T0, device_key="cpu")
    assert ledger.total_wei("cpu") == 2 * big
    assert ledger.wei_by_device_day() == {("cpu", "2026-11-20"): 2 * big}


def test_a_payment_needs_a_device_and_valid_values(ledger):
    with pytest.raises(LookupError, match="job 9"):
        ledger.record_payment(9, TX1, NTK, timestamp=T0)
    for bad_amount in (-1, 1.5, True):
        with pytest.raises(ValueError):
            ledger.record_payment(9, TX1, bad_amount, timestamp=T0, device_key="cpu")
    with pytest.raises(ValueError, match="transaction hash"):
        ledger.record_payment(9, "0x1234", NTK, timestamp=T0, device_key="cpu")
    ledger.assign_job(9, "cpu", at=T0)
    ledger.assign_job(9, "cpu", at=T0 + 5)  # idempotent
    with pytest.raises(LedgerConflict):
        ledger.assign_job(9, GPU, at=T0)
    assert ledger.payments() == []


def test_indexer_events_are_joined_to_devices_by_job_id(ledger):
    me, other = "0x" + "11" * 20, "0x" + "22" * 20
    ledger.assign_job(1, GPU, at=T0)
    ledger.assign_job(2, "cpu", at=T0)
    events = [
        event("JobPosted", 1, None, 5 * NTK, "0x" + "01" * 32),
        event("JobAccepted", 1, me.upper().replace("0X", "0x"), 5 * NTK, TX1),
        event("PaymentReleased", 2, me, 2 * NTK, TX2, ts=T0 + 86400),
        event("JobAccepted", 3, me, NTK, "0x" + "03" * 32),  # a job this ledger never saw assigned
        event("JobAccepted", 4, other, NTK, "0x" + "04" * 32),  # paid to someone else
    ]
    res = ledger.import_events(events, miner=me)
    assert (res.recorded, res.already, res.unassigned) == (2, 0, (3,))
    again = ledger.import_events(events, miner=me)
    assert (again.recorded, again.already) == (0, 2)
    assert ledger.wei_by_device_day() == {(GPU, "2026-11-20"): 5 * NTK, ("cpu", "2026-11-21"): 2 * NTK}


def test_power_is_integrated_into_wh_per_day(ledger):
    samples = [(GPU, T0 + i, 120.0) for i in range(0, 3601)]
    assert ledger.add_power_samples(samples, max_gap_s=5) == pytest.approx(120.0)
    [day] = ledger.energy()
    assert (day.device_key, day.day) == (GPU, "2026-11-20")
    assert day.wh == pytest.approx(120.0) and day.seconds == pytest.approx(3600)


def test_trapezoid_between_readings(ledger):
    ledger.add_power_samples([("cpu", T0, 100.0), ("cpu", T0 + 4, 200.0)], max_gap_s=5)
    assert ledger.energy()[0].wh == pytest.approx(150.0 * 4 / 3600)


def test_missing_readings_and_gaps_never_count_as_hours_of_power(ledger):
    gap = 5.0
    ledger.add_power_samples([(GPU, T0, 100.0), (GPU, T0 + 1, 100.0)], max_gap_s=gap)  # 1 s counted
    ledger.add_power_samples([(GPU, T0 + 2, None)], max_gap_s=gap)  # NA: ends the run
    ledger.add_power_samples([(GPU, T0 + 3, 100.0)], max_gap_s=gap)  # starts a new run, nothing counted
    ledger.add_power_samples([(GPU, T0 + 3 + 7200, 100.0)], max_gap_s=gap)  # 2 h without readings: a gap
    ledger.add_power_samples([(GPU, T0 + 3 + 7201, 100.0)], max_gap_s=gap)  # 1 s counted
    ledger.add_power_samples([(GPU, T0 + 3 + 7201, 500.0), (GPU, T0 + 100, 500.0)], max_gap_s=gap)  # not newer
    [day] = ledger.energy()
    assert day.seconds == pytest.approx(2.0)
    assert day.wh == pytest.approx(200.0 / 3600)


def test_an_interval_across_midnight_is_split_between_the_days(ledger):
    ledger.add_power_samples([("cpu", MIDNIGHT - 3, 60.0), ("cpu", MIDNIGHT + 1, 60.0)], max_gap_s=5)
    days = {e.day: e for e in ledger.energy()}
    assert days["2026-11-20"].seconds == pytest.approx(3) and days["2026-11-20"].wh == pytest.approx(60 * 3 / 3600)
    assert days["2026-11-21"].seconds == pytest.approx(1) and days["2026-11-21"].wh == pytest.approx(60 * 1 / 3600)
    assert [e.day for e in ledger.energy(since_day="2026-11-21")] == ["2026-11-21"]


def test_a_bad_sample_rolls_the_whole_batch_back(ledger):
    with pytest.raises(ValueError, match="negative"):
        ledger.add_power_samples([("cpu", T0, 50.0), ("cpu", T0 + 1, 50.0), ("cpu", T0 + 2, -5.0)], max_gap_s=5)
    assert ledger.energy() == []
    ledger.add_power_samples([("cpu", T0 + 3, 50.0), ("cpu", T0 + 4, 50.0)], max_gap_s=5)
    assert ledger.energy()[0].seconds == pytest.approx(1)


def test_the_ledger_survives_reopening_and_is_wal(tmp_path):
    path = tmp_path / "ledger.sqlite"
    led = Ledger(path, tz=UTC)
    led.assign_job(1, GPU, at=T0)
    led.record_payment(1, TX1, NTK, timestamp=T0)
    led.add_power_samples([(GPU, T0, 100.0), (GPU, T0 + 2, 100.0)], max_gap_s=5)
    led.close()
    again = Ledger(path, tz=UTC)
    try:
        assert again.total_wei() == NTK and again.device_of(1) == GPU
        again.add_power_samples([(GPU, T0 + 4, 100.0)], max_gap_s=5)  # continues the run across the reopen
        assert again.energy()[0].seconds == pytest.approx(4)
    finally:
        again.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
