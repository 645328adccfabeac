"""Clocks and ISO-week arithmetic in the program's time zone (pure: no I/O, time is passed in)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

from rewards.errors import Invalid

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """Return the current instant, timezone-aware."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Return the current instant in UTC."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, demo seeding)."""

    def __init__(self, start: datetime) -> None:
        self._now = to_utc(start)

    def now(self) -> datetime:
        """Return the clock's current instant."""
        return self._now

    def set(self, instant: datetime) -> None:
        """Jump to an instant."""
        self._now = to_utc(instant)

    def advance(self, **kwargs: float) -> datetime:
        """Move forward by a timedelta given as keyword arguments and return the new instant."""
        self._now = self._now + timedelta(**kwargs)
        return self._now


def to_utc(instant: datetime) -> datetime:
    """Return an aware UTC datetime; a naive one is taken to be UTC already."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for a time-zone name."""
    return ZoneInfo(name)


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO week: the week-year from isocalendar(), not the calendar year."""

    year: int
    week: int

    def __post_init__(self) -> None:
        if not 1 <= self.week <= 53:
            raise ValueError(f"week out of range: {self.week}")
        if self.week == 53 and date(self.year, 12, 28).isocalendar()[1] != 53:
            raise ValueError(f"{self.year} has no ISO week 53")

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """Parse '2026-W48'; raise ValueError with a reason otherwise."""
        m = _WEEK_RE.match(text.strip())
        if not m:
            raise ValueError(f"not an ISO week (expected YYYY-Www, e.g. 2026-W48): {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def from_text(cls, text: str) -> IsoWeek:
        """Parse a week a caller sent (query, path, CLI option); Invalid (422, code invalid_week) otherwise."""
        try:
            return cls.parse(text)
        except ValueError as exc:
            raise Invalid(str(exc), code="invalid_week") from exc

    @classmethod
    def of_date(cls, day: date) -> IsoWeek:
        """Return the ISO week a calendar date belongs to."""
        iso = day.isocalendar()
        return cls(iso[0], iso[1])

    def monday(self) -> date:
        """Return the Monday that starts this week."""
        return date.fromisocalendar(self.year, self.week, 1)

    def start(self, tz: tzinfo) -> datetime:
        """Return Monday 00:00 of this week in the program's zone, as aware UTC."""
        return datetime.combine(self.monday(), datetime.min.time(), tzinfo=tz).astimezone(UTC)

    def end(self, tz: tzinfo) -> datetime:
        """Return the instant the week ends (next Monday 00:00 local), as aware UTC."""
        return self.next().start(tz)

    def next(self) -> IsoWeek:
        """Return the following week."""
        return IsoWeek.of_date(self.monday() + timedelta(days=7))

    def previous(self) -> IsoWeek:
        """Return the preceding week."""
        return IsoWeek.of_date(self.monday() - timedelta(days=7))

    def label(self) -> str:
        """The week as citizens read it: 2026年第48周."""
        return f"{self.year}年第{self.week}周"

    def dates(self) -> str:
        """Monday to Sunday as citizens read it: 11月23日—11月29日."""
        monday = self.monday()
        sunday = monday + timedelta(days=6)
        return f"{monday.month}月{monday.day}日—{sunday.month}月{sunday.day}日"


def week_of(instant: datetime, tz: tzinfo) -> IsoWeek:
    """Return the ISO week an instant falls in, seen from the program's time zone."""
    return IsoWeek.of_date(to_utc(instant).astimezone(tz).date())


def local_day(instant: datetime, tz: tzinfo) -> date:
    """Return the calendar day of an instant in the program's time zone."""
    return to_utc(instant).astimezone(tz).date()
