"""Weekly mining hours: parsing, which hours are open, when it next changes."""

from __future__ import annotations

from datetime import datetime

import pytest

from common.schedule import WeeklySchedule, describe_until

MON = datetime(2024, 6, 3)  # a Monday


def at(day: int, hh: int, mm: int = 0) -> datetime:
    return MON.replace(day=3 + day, hour=hh, minute=mm)


def test_weeknights_and_weekends():
    s = WeeklySchedule.parse("mon-fri 23:00-07:00; sat,sun")
    assert s.text == "mon-fri 23:00-07:00; sat,sun"
    assert not s.allows(at(0, 12)) and s.allows(at(0, 23, 30)) and s.allows(at(1, 6, 59)) and not s.allows(at(1, 7))
    assert s.allows(at(5, 12)) and s.allows(at(6, 23, 59))
    assert not s.allows(at(0, 6))  # a night window belongs to the day it starts on: Sunday's ends at midnight
    assert s.next_change(at(0, 12)) == at(0, 23) and s.next_change(at(0, 23, 30)) == at(1, 7)
    assert s.next_change(at(4, 12)) == at(4, 23)
    assert s.next_change(at(5, 12)) == MON.replace(day=10)  # open from Friday 23:00 until Monday 00:00


def test_ranges_wrap_the_week_and_aliases():
    s = WeeklySchedule.parse("fri-mon 00:00-06:00")
    assert s.allows(at(0, 1)) and s.allows(at(4, 1)) and s.allows(at(6, 5)) and not s.allows(at(2, 1))
    assert WeeklySchedule.parse("weekends").allows(at(6, 12)) and not WeeklySchedule.parse("weekends").allows(at(0, 12))
    assert WeeklySchedule.parse("22:00-24:00").allows(at(2, 23, 59)) and not WeeklySchedule.parse("22:00-24:00").allows(at(2, 0))
    assert WeeklySchedule.parse("daily").next_change(at(2, 12)) is None


def test_empty_schedule_always_allows():
    s = WeeklySchedule.parse("  ")
    assert s.always and s.allows(at(3, 3)) and s.next_change(at(3, 3)) is None


@pytest.mark.parametrize("text, words", [
    ("mon-fry", "unknown day 'fry'"), ("25:00-01:00", "bad time"), ("mon 10:00-10:00", "is empty"),
    ("mon 10:00", "cannot read '10:00'"), ("a b c", "cannot read 'a b c'"), ("mon 07:60-08:00", "bad time"),
])
def test_bad_schedules_are_one_line_errors(text, words):
    with pytest.raises(ValueError) as e:
        WeeklySchedule.parse(text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_describe_until():
    assert describe_until(at(0, 23), at(0, 12)) == "23:00"
    assert describe_until(at(1, 7), at(0, 23, 30)) == "Tue 07:00"
