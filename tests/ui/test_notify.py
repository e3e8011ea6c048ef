"""The notification rate limiter: one notice per kind per interval, the rest coalesced, exact sums."""

import pytest

from ui.notify import JOB_FAILED, PAYMENT, NotificationLimiter, format_ntk

NTK = 10**18


def test_first_payment_shows_at_once_then_held_and_coalesced_with_exact_total():
    lim = NotificationLimiter(interval_s=60)
    first = lim.payment(5 * NTK, now=1000.0)
    assert first is not None and first.title == "Payment received" and first.message == "5 NTK"
    assert lim.payment(4 * NTK, now=1010.0) is None
    assert lim.payment(NTK // 2, now=1020.0) is None
    assert lim.payment(8 * NTK, now=1030.0) is None
    assert lim.held(PAYMENT) == 3
    assert lim.next_due() == 1060.0
    assert lim.due(1059.9) == []
    [n] = lim.due(1060.0)
    assert n.count == 3 and n.message == "3 payments received: 12.5 NTK"
    assert lim.held(PAYMENT) == 0 and lim.next_due() is None
    # the next one after a notice waits a full interval again
    assert lim.payment(NTK, now=1061.0) is None
    assert lim.next_due() == 1120.0


def test_kinds_are_limited_separately():
    lim = NotificationLimiter(interval_s=60)
    assert lim.payment(NTK, now=0.0) is not None
    failed = lim.job_failed("job-7", "timeout after 60 s", now=1.0)
    assert failed is not None and failed.title == "Job failed" and failed.message == "job-7: timeout after 60 s"
    assert lim.job_failed("job-8", None, now=2.0) is None
    assert lim.job_failed("job-9", "out of memory", now=3.0) is None
    assert lim.payment(NTK, now=4.0) is None
    notices = {n.kind: n for n in lim.due(61.0)}
    assert set(notices) == {PAYMENT, JOB_FAILED}
    assert notices[JOB_FAILED].message == "2 jobs failed: job-8, job-9. Last: out of memory"
    assert notices[PAYMENT].message == "1 NTK" and notices[PAYMENT].count == 1


def test_quiet_spell_longer_than_interval_shows_the_next_event_at_once():
    lim = NotificationLimiter(interval_s=60)
    assert lim.payment(NTK, now=0.0) is not None
    assert lim.payment(NTK, now=61.0) is not None
    assert lim.next_due() is None


def test_many_failures_name_three_and_count_the_rest():
    lim = NotificationLimiter(interval_s=10)
    lim.job_failed("a", "x", now=0.0)
    for i, j in enumerate("bcdef"):
        lim.job_failed(j, f"r{j}", now=1.0 + i)
    [n] = lim.due(10.0)
    assert n.message == "5 jobs failed: b, c, d and 2 more. Last: rf"


@pytest.mark.parametrize("wei, text", [
    (0, "0"), (12 * NTK + NTK // 2, "12.5"), (1, "<0.000001"), (1234567 * NTK, "1,234,567"),
    (NTK + 123456789, "1"), (10**12, "0.000001"), (-3 * NTK // 2, "-1.5"),
    (2**256 - 1, "115,792,089,237,316,195,423,570,985,008,687,907,853,269,984,665,640,564,039,457.584007"),
])
def test_format_ntk_is_exact_and_never_rounds_up(wei, text):
    assert format_ntk(wei) == text


def test_bad_inputs_are_refused():
    lim = NotificationLimiter()
    with pytest.raises(ValueError):
        lim.payment(-1, now=0.0)
    with pytest.raises(ValueError):
        lim.payment(1.5, now=0.0)
    with pytest.raises(ValueError):
        NotificationLimiter(interval_s=0)
    with pytest.raises(TypeError):
        format_ntk(1.0)
