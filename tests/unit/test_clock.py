"""ISO weeks in the program's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.clock import FixedClock, IsoWeek, week_of

SH = ZoneInfo("Asia/Shanghai")


def test_week_year_comes_from_isocalendar() -> None:
    assert str(IsoWeek.of_date(date(2024, 12, 30))) == "2025-W01"
    assert str(IsoWeek.of_date(date(2027, 1, 1))) == "2026-W53"
    assert str(IsoWeek.of_date(date(2021, 1, 3))) == "2020-W53"


def test_week_boundary_is_monday_midnight_shanghai() -> None:
    monday = datetime(2026, 11, 30, 0, 0, tzinfo=SH)
    assert str(week_of(monday, SH)) == "2026-W49"
    assert str(week_of(monday - timedelta(seconds=1), SH)) == "2026-W48"
    # 2026-11-29 17:00 UTC is already Monday 01:00 in Shanghai
    assert str(week_of(datetime(2026, 11, 29, 17, 0, tzinfo=UTC), SH)) == "2026-W49"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_every_instant_lies_inside_its_week(instant) -> None:
    week = week_of(instant, SH)
    assert week.start(SH) <= instant < week.end(SH)
    assert week.next().previous() == week
    assert IsoWeek.parse(str(week)) == week


@pytest.mark.parametrize("bad", ["2026-48", "2026-W54", "2025-W53", "W48", "2026-W00", ""])
def test_bad_week_strings_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        IsoWeek.parse(bad)


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(datetime(2026, 1, 1))
    assert clock.now().tzinfo is not None
    assert clock.advance(hours=1) == datetime(2026, 1, 1, 1, tzinfo=UTC)
