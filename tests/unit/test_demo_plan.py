"""The demo city's plan (pure): what `rewards demo` will carry out through the real flows is coherent whatever
the hour it starts: nothing happens after now, every verdict follows its report, a duplicate names an earlier
report of the same problem nearby, the queue is never empty, and it is a dense but small city."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.cases.commands import ChangeStatus, GiveVerdict, ReportCase, VoidCase
from rewards.cases.geo import haversine_m
from rewards.config import DEFAULT_CATEGORIES
from rewards.demo import QUEUE_AT_LEAST, DemoPlan, photo_url, plan_city

CATEGORIES = [c.code for c in DEFAULT_CATEGORIES]
MONDAY = datetime(2026, 11, 15, 16, 0, tzinfo=UTC)  # Monday 2026-11-16 00:00 in Asia/Shanghai


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    hours=st.integers(0, 20 * 24),
    per_day=st.integers(10, 40),
)
def test_the_plan_is_coherent_at_any_hour(seed: int, hours: int, per_day: int) -> None:
    now = MONDAY + timedelta(hours=hours, minutes=7)
    city = plan_city(DemoPlan(citizens=200, reports_per_day=per_day, seed=seed), CATEGORIES, MONDAY, now)
    reports: dict[str, ReportCase] = {}
    decided: set[str] = set()
    for event in city.events:
        assert event.at < now
        command = event.command
        if isinstance(command, ReportCase):
            reports[command.case_id] = command
            assert command.photos == photo_url(command.category) and command.photos
            continue
        assert command.case_id in reports and event.at > reports[command.case_id].reported_at
        if isinstance(command, GiveVerdict):
            decided.add(command.case_id)
            if command.verdict == "duplicate":
                original, second = reports[command.duplicate_of or ""], reports[command.case_id]
                assert original.reported_at < second.reported_at <= original.reported_at + timedelta(days=2)
                assert original.category == second.category
                assert original.lat and original.lon and second.lat and second.lon
                assert haversine_m(original.lat, original.lon, second.lat, second.lon) < 250
        else:
            assert isinstance(command, ChangeStatus | VoidCase) and command.case_id in decided
    assert [e.at for e in city.events] == sorted(e.at for e in city.events)
    assert city.reports == len(reports)
    assert len(reports) - len(decided) >= min(QUEUE_AT_LEAST, len(reports))  # the queue is never empty


def test_the_default_city_is_small_and_dense() -> None:
    now = MONDAY + timedelta(days=16, hours=6)  # the Wednesday of the third week, 14:00
    city = plan_city(DemoPlan(), CATEGORIES, MONDAY, now)
    assert 300 < city.reports < 600  # seconds to seed, not minutes
    verdicts = [e.command for e in city.events if isinstance(e.command, GiveVerdict)]
    assert {v.verdict for v in verdicts} == {"valid", "invalid", "duplicate"}
    assert sum(isinstance(e.command, VoidCase) for e in city.events) == 1
