"""Weekly mining hours (tariff windows): when a device may take new jobs.

A schedule is text a person can type, one window per entry, entries separated by ";" or new
lines:  `mon-fri 23:00-07:00; sat,sun` = weeknights from 23:00 to 07:00 the next morning, and
all weekend. An entry is DAYS, TIMES or both:
- DAYS: `mon`..`sun`, ranges (`mon-fri`, `fri-mon`), lists (`sat,sun`), `daily` or `*`,
  `weekdays`, `weekends`; left out: every day.
- TIMES: `HH:MM-HH:MM` in local wall-clock time; an end at or before the start runs into the
  next day (a night window belongs to the day it starts on); `24:00` ends at midnight; left
  out: the whole day.
An empty schedule allows every hour. Parsing errors are one line naming the entry.

Pure functions on naive local datetimes (what a tariff means); thread-safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["WeeklySchedule", "Window", "check_schedule", "DAYS"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK_MIN = 7 * 24 * 60
_ALIASES = {"daily": range(7), "*": range(7), "weekdays": range(5), "weekends": (5, 6), "everyday": range(7)}
_TIMES = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_DAY_TOKEN = re.compile(r"^[a-z*]+(-[a-z]+)?(,[a-z*]+(-[a-z]+)?)*$")


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) and the minutes of the day it starts and ends (end <= start: next day)."""

    days: frozenset[int]
    start_min: int
    end_min: int

    def intervals(self) -> list[tuple[int, int]]:
        """[start, end) in minutes of the week; an end past Sunday night wraps (callers test both)."""
        out = []
        for d in sorted(self.days):
            s = d * 1440 + self.start_min
            e = d * 1440 + (self.end_min if self.end_min > self.start_min else 1440 + self.end_min)
            out.append((s, e))
        return out


_FULL = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}


def _day(name: str, entry: str) -> int:
    key = name[:3] if name in _FULL else name
    if key not in DAYS:
        raise ValueError(f"unknown day {name!r} in {entry!r}; use mon..sun, daily, weekdays or weekends")
    return DAYS.index(key)


def _days(token: str, entry: str) -> frozenset[int]:
    out: set[int] = set()
    for part in token.split(","):
        if part in _ALIASES:
            out.update(_ALIASES[part])
            continue
        a, sep, b = part.partition("-")
        first = _day(a, entry)
        if not sep:
            out.add(first)
            continue
        last = _day(b, entry)
        d = first
        while True:  # a range may wrap over the week's end (fri-mon)
            out.add(d)
            if d == last:
                break
            d = (d + 1) % 7
    return frozenset(out)


def _minutes(h: str, m: str, entry: str, *, end: bool) -> int:
    hh, mm = int(h), int(m)
    if mm > 59 or hh > 24 or (hh == 24 and (mm or not end)):
        raise ValueError(f"bad time in {entry!r}; use HH:MM between 00:00 and 24:00")
    return hh * 60 + mm


def _window(entry: str) -> Window:
    tokens = entry.lower().split()
    if not tokens or len(tokens) > 2:
        raise ValueError(f"cannot read {entry!r}; write e.g. 'mon-fri 23:00-07:00' or 'sat,sun'")
    days: frozenset[int] = frozenset(range(7))
    start, end = 0, 1440
    for tok in tokens:
        t = _TIMES.match(tok)
        if t:
            start = _minutes(t[1], t[2], entry, end=False)
            end = _minutes(t[3], t[4], entry, end=True)
            if start == end:
                raise ValueError(f"window {entry!r} is empty; for the whole day leave the hours out")
        elif _DAY_TOKEN.match(tok):
            days = _days(tok, entry)
        else:
            raise ValueError(f"cannot read {tok!r} in {entry!r}; write e.g. 'mon-fri 23:00-07:00' or 'sat,sun'")
    return Window(days, start, end)


@dataclass(frozen=True)
class WeeklySchedule:
    """Windows in which mining is allowed; none at all: always allowed."""

    windows: tuple[Window, ...] = ()
    text: str = ""

    @classmethod
    def parse(cls, text: str | None) -> "WeeklySchedule":
        """The schedule `text` means (see the module docstring); ValueError in one line if unreadable."""
        entries = [e.strip() for e in re.split(r"[;\n]", text or "") if e.strip()]
        ws = tuple(_window(e) for e in entries)
        return cls(ws, "; ".join(entries))

    @property
    def always(self) -> bool:
        return not self.windows

    def _open_at(self, minute: float) -> bool:
        for w in self.windows:
            for s, e in w.intervals():
                if s <= minute < e or s <= minute + WEEK_MIN < e:
                    return True
        return False

    @staticmethod
    def _minute(dt: datetime) -> float:
        return dt.weekday() * 1440 + dt.hour * 60 + dt.minute + dt.second / 60 + dt.microsecond / 6e7

    def allows(self, dt: datetime) -> bool:
        """Whether devices may take new jobs at local time `dt`."""
        return self.always or self._open_at(self._minute(dt))

    def next_change(self, dt: datetime) -> datetime | None:
        """When `allows` next flips after `dt` (local, whole minutes); None if it never does."""
        if self.always:
            return None
        now_m = self._minute(dt)
        state = self._open_at(now_m)
        bounds = {b % WEEK_MIN for w in self.windows for iv in w.intervals() for b in iv}
        deltas = sorted(((b - now_m) % WEEK_MIN) or WEEK_MIN for b in bounds)
        for delta in deltas:
            if self._open_at((now_m + delta) % WEEK_MIN) != state:
                return (dt + timedelta(minutes=delta)).replace(second=0, microsecond=0)
        return None


def check_schedule(value: str | None) -> str:
    """A schedule setting as typed: trimmed and checked (ValueError in one line), "" for none."""
    return WeeklySchedule.parse(value).text


def describe_until(when: datetime, now: datetime) -> str:
    """"23:00" today, "Mon 07:00" within the week, a date beyond."""
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if when - now < timedelta(days=7):
        return f"{DAYS[when.weekday()].capitalize()} {when:%H:%M}"
    return when.strftime("%Y-%m-%d %H:%M")
