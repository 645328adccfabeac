"""StatsService: the public city-management record of a period, sealed once the period has ended and settled.

A period that is still open (or ended less than `settle` ago) is computed live from SQL on every request; the
first request after it has settled computes it once more and stores the counts (`stats_figures`), and every later
request reads them. Two requests sealing the same period at once both insert-or-ignore the same rows. Redis is
never read: the record is SQL aggregates only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rewards.clock import Clock
from rewards.db import Database, insert_or_ignore
from rewards.errors import Invalid, NotFound
from rewards.stats import queries
from rewards.stats.figures import CITY, Counts, Figures, ScopeKind
from rewards.stats.models import StatsFigures
from rewards.stats.periods import (
    Period,
    PeriodKind,
    current_week,
    parse_month,
    parse_week,
    recent_months,
    recent_weeks,
)


@dataclass(frozen=True)
class PeriodRecord:
    """The figures of one period: the city, each district and each department (busiest first)."""

    period: Period
    city: Figures
    districts: list[Figures]
    departments: list[Figures]
    sealed: bool  # read from the stored record (the period has ended and settled)
    live: bool  # the period has not ended yet

    def scope(self, kind: ScopeKind, name: str) -> Figures | None:
        """The figures of one district or department, or None when it had nothing in this period."""
        rows = self.districts if kind == "district" else self.departments
        return next((f for f in rows if f.scope == name), None)


def _sorted(figures: list[Figures]) -> list[Figures]:
    return sorted(figures, key=lambda f: (-f.counts.received, -f.counts.closed, f.scope))


def assemble(period: Period, counts: dict[queries.Key, Counts], sealed: bool, now: datetime) -> PeriodRecord:
    """Arrange a period's counts as its record."""
    figures = [Figures(kind, scope, c) for (kind, scope), c in counts.items()]
    city = next((f for f in figures if f.scope_kind == "city"), Figures("city", CITY, Counts()))
    return PeriodRecord(
        period,
        city,
        _sorted([f for f in figures if f.scope_kind == "district"]),
        _sorted([f for f in figures if f.scope_kind == "department"]),
        sealed,
        not period.closed(now),
    )


class StatsService:
    """Records of weeks and months from SQL, sealed per period after it has ended and settled."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        tz: tzinfo,
        settle: timedelta,
        trend_count: int,
        live_for: timedelta = timedelta(0),
    ) -> None:
        self.db = db
        self.clock = clock
        self.tz = tz
        self.settle = settle
        self.trend_count = trend_count
        self.live_for = live_for
        # figures of periods not sealed yet, computed at most once per live_for (this process): a public page must
        # not run the record's aggregates on every request
        self._live: dict[str, tuple[datetime, dict[queries.Key, Counts]]] = {}
        self._lock = threading.Lock()

    def period(self, week: str | None = None, month: str | None = None) -> Period:
        """The period a caller names (?week= or ?month=; neither: this week); 422 when malformed, 404 in the future."""
        now = self.clock.now()
        if week is not None and month is not None:
            raise Invalid("name a week or a month, not both", code="invalid_period")
        if month is not None:
            period = parse_month(month, self.tz)
        elif week is not None:
            period = parse_week(week, self.tz)
        else:
            period = current_week(now, self.tz)
        if period.start > now:
            raise NotFound(f"{period.key} has not begun yet", code="period_in_future")
        return period

    def trend(self, kind: PeriodKind, end: Period | None = None) -> list[PeriodRecord]:
        """The records of the last `trend_count` weeks or months up to `end` (default: the current one)."""
        at = min(end.start, self.clock.now()) if end is not None else self.clock.now()
        pick = recent_weeks if kind == "week" else recent_months
        return self.records(pick(at, self.tz, self.trend_count))

    def record(self, period: Period) -> PeriodRecord:
        """The record of one period."""
        return self.records([period])[0]

    def records(self, periods: Sequence[Period]) -> list[PeriodRecord]:
        """The records of several periods (in the order given): stored ones read in one query, others computed."""
        now = self.clock.now()
        sealable = [p for p in periods if p.sealable(now, self.settle)]
        with self.db.read() as session:
            stored = self._stored(session, [p.key for p in sealable])
            computed = {}
            since: datetime | None = None
            for p in periods:
                if p.key in stored:
                    continue
                recent = self._recent(p, now) if not p.sealable(now, self.settle) else None
                if recent is None:
                    since = since or queries.first_activity(session) or now  # nothing yet: every period is empty
                    recent = self._remember(p, queries.compute(session, p, since=since), now)
                computed[p.key] = recent
        # a period before the first activity stays unsealed (it costs no query): history imported later still shows
        to_seal = [p for p in sealable if p.key not in stored and since is not None and p.end > since]
        if to_seal:
            self._seal(to_seal, computed, now)
        out = []
        for p in periods:
            counts = stored.get(p.key) or computed[p.key]
            out.append(assemble(p, counts, p.key in stored, now))
        return out

    def _recent(self, period: Period, now: datetime) -> dict[queries.Key, Counts] | None:
        with self._lock:
            found = self._live.get(period.key)
        if found is None or not (found[0] <= now < found[0] + self.live_for):
            return None
        return found[1]

    def _remember(self, period: Period, counts: dict[queries.Key, Counts], now: datetime) -> dict[queries.Key, Counts]:
        if self.live_for > timedelta(0) and not period.sealable(now, self.settle):
            with self._lock:
                for key in [k for k, (at, _) in self._live.items() if at + self.live_for <= now]:
                    del self._live[key]  # expired: only the few periods not sealed yet stay
                self._live[period.key] = (now, counts)
        return counts

    def _stored(self, session: Session, keys: list[str]) -> dict[str, dict[queries.Key, Counts]]:
        found: dict[str, dict[queries.Key, Counts]] = {}
        if not keys:
            return found
        names = Counts.names()
        rows = session.scalars(select(StatsFigures).where(StatsFigures.period.in_(keys)))
        for row in rows:
            kind: Any = row.scope_kind
            found.setdefault(row.period, {})[(kind, row.scope)] = Counts(**{n: getattr(row, n) for n in names})
        # a period is sealed when its city-wide row is stored (written in the same transaction as the others)
        return {k: v for k, v in found.items() if ("city", CITY) in v}

    def _seal(self, periods: list[Period], computed: dict[str, dict[queries.Key, Counts]], now: datetime) -> None:
        names = Counts.names()
        with self.db.uow() as uow:
            for p in periods:
                for (kind, scope), c in computed[p.key].items():
                    values = {"period": p.key, "scope_kind": kind, "scope": scope, "computed_at": now}
                    values |= {n: getattr(c, n) for n in names}
                    insert_or_ignore(uow.session, StatsFigures, values, ("period", "scope_kind", "scope"))
