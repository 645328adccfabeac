"""The record's SQL aggregates: every figure of `rewards.stats.figures.Counts` for one period, per scope.

Each figure is one grouped query over the steps of the case history (or the ledger, or the ratings) inside the
period's [start, end), the same SQL on PostgreSQL and SQLite except two expressions: the seconds between two
instants, and the median (PostgreSQL's percentile_cont; on SQLite the middle rows by row_number(), averaged).
Only steps the case accepted (`applied`) count; a late step kept for the record does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from rewards.cases import lifecycle as lc
from rewards.cases.models import Case, CaseHistory
from rewards.clock import to_utc
from rewards.engagement.ratings import CaseRating, SatisfactionCounts, satisfaction_by, satisfaction_counts
from rewards.scoring.ledger import LedgerEntry
from rewards.stats.figures import CITY, SCOPE_KINDS, Counts, ScopeKind
from rewards.stats.periods import Period

Key = tuple[ScopeKind, str]


def scope_column(kind: ScopeKind) -> Any:
    """The case column a scope groups by (a constant for the city)."""
    if kind == "district":
        return Case.district
    if kind == "department":
        return Case.department
    return literal(CITY)


def seconds_between(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    """later - earlier in seconds, as a float expression of the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _steps(status: str, period: Period, history: Any = CaseHistory) -> ColumnElement[bool]:
    return and_(
        history.status == status,
        history.applied.is_(True),
        history.occurred_at >= period.start,
        history.occurred_at < period.end,
    )


def medians(session: Session, kind: ScopeKind, status: str, period: Period) -> dict[str, float]:
    """Per scope: the median seconds from report to the step `status` taken in the period."""
    group = scope_column(kind).label("g")
    value = seconds_between(session, CaseHistory.occurred_at, Case.reported_at).label("v")
    base = select(group, value).join(Case, Case.id == CaseHistory.case_pk).where(_steps(status, period))
    if session.get_bind().dialect.name == "postgresql":
        inner = base.subquery()
        stmt = select(inner.c.g, func.percentile_cont(0.5).within_group(inner.c.v)).group_by(inner.c.g)
    else:
        ranked = base.add_columns(
            func.row_number().over(partition_by=group, order_by=value).label("rn"),
            func.count().over(partition_by=group).label("n"),
        ).subquery()
        middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
        stmt = select(ranked.c.g, func.avg(ranked.c.v)).where(middle).group_by(ranked.c.g)
    return {g: float(m) for g, m in session.execute(stmt) if g is not None and m is not None}


def step_counts(session: Session, kind: ScopeKind, period: Period) -> dict[str, dict[str, int]]:
    """Per scope: reports, verdicts, dispatches and closings in the period, and closings with and by a deadline."""
    group = scope_column(kind)
    closed = CaseHistory.status == lc.CLOSED
    with_deadline = and_(closed, Case.deadline_at.is_not(None))

    def n(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    stmt = (
        select(
            group,
            n(CaseHistory.status == lc.REPORTED),
            n(CaseHistory.status == lc.FILED),
            n(CaseHistory.status == lc.REFUSED),
            n(CaseHistory.status == lc.DISPATCHED),
            n(closed),
            n(with_deadline),
            n(and_(with_deadline, CaseHistory.occurred_at <= Case.deadline_at)),
        )
        .join(Case, Case.id == CaseHistory.case_pk)
        .where(
            CaseHistory.status.in_((lc.REPORTED, lc.FILED, lc.REFUSED, lc.DISPATCHED, lc.CLOSED)),
            CaseHistory.applied.is_(True),
            CaseHistory.occurred_at >= period.start,
            CaseHistory.occurred_at < period.end,
        )
        .group_by(group)
    )
    names = ("received", "filed", "refused", "dispatched", "closed", "closed_with_deadline", "closed_on_time")
    return {g: dict(zip(names, map(int, rest), strict=True)) for g, *rest in session.execute(stmt) if g is not None}


def filed_and_closed(session: Session, kind: ScopeKind, period: Period) -> dict[str, int]:
    """Per scope: cases filed in the period and closed in it too."""
    closing = aliased(CaseHistory)
    group = scope_column(kind)
    stmt = (
        select(group, func.count())
        .select_from(CaseHistory)
        .join(Case, Case.id == CaseHistory.case_pk)
        .join(closing, and_(closing.case_pk == CaseHistory.case_pk, _steps(lc.CLOSED, period, closing)))
        .where(_steps(lc.FILED, period))
        .group_by(group)
    )
    return {g: int(c) for g, c in session.execute(stmt) if g is not None}


def reporters(session: Session, kind: ScopeKind, period: Period) -> dict[str, tuple[int, int]]:
    """Per scope: (active reporters, first-time reporters) of the period's reports."""
    group = scope_column(kind)
    earlier = aliased(Case)
    before = exists().where(
        earlier.reporter_id == Case.reporter_id,
        or_(
            earlier.reported_at < Case.reported_at, and_(earlier.reported_at == Case.reported_at, earlier.id < Case.id)
        ),
    )
    reported = and_(_steps(lc.REPORTED, period), Case.reporter_id.is_not(None))
    active = (
        select(group, func.count(func.distinct(Case.reporter_id)))
        .select_from(CaseHistory)
        .join(Case, Case.id == CaseHistory.case_pk)
        .where(reported)
        .group_by(group)
    )
    first = (
        select(group, func.count())
        .select_from(CaseHistory)
        .join(Case, Case.id == CaseHistory.case_pk)
        .where(reported, ~before)
        .group_by(group)
    )
    firsts = {g: int(c) for g, c in session.execute(first) if g is not None}
    return {g: (int(c), firsts.get(g, 0)) for g, c in session.execute(active) if g is not None}


def points(session: Session, kind: ScopeKind, period: Period) -> dict[str, int]:
    """Per scope: the ledger's points awarded in the period (reversals included)."""
    group = scope_column(kind)
    stmt = (
        select(group, func.coalesce(func.sum(LedgerEntry.points), 0))
        .join(Case, Case.id == LedgerEntry.case_pk)
        .where(LedgerEntry.created_at >= period.start, LedgerEntry.created_at < period.end)
        .group_by(group)
    )
    return {g: int(p) for g, p in session.execute(stmt) if g is not None}


def satisfaction(session: Session, kind: ScopeKind, period: Period) -> dict[str, SatisfactionCounts]:
    """Per scope: the ratings given in the period (rewards.engagement.ratings, the one aggregate of ratings)."""
    if kind == "city":
        return {CITY: satisfaction_counts(session, since=period.start, until=period.end)}
    found = satisfaction_by(session, since=period.start, until=period.end, by=kind)
    return {k: v for k, v in found.items() if k is not None}


def first_activity(session: Session) -> datetime | None:
    """The earliest instant any figure can count: the first report, ledger line or rating (None: nothing yet)."""
    firsts = [
        session.scalar(select(func.min(CaseHistory.occurred_at)).where(CaseHistory.status == lc.REPORTED)),
        session.scalar(select(func.min(LedgerEntry.created_at))),
        session.scalar(select(func.min(CaseRating.rated_at))),
    ]
    found = [to_utc(t) for t in firsts if t is not None]
    return min(found) if found else None


def compute(
    session: Session, period: Period, kinds: Iterable[ScopeKind] = SCOPE_KINDS, since: datetime | None = None
) -> dict[Key, Counts]:
    """Every figure of the period for each scope that had anything in it (the city always).

    `since` (first_activity): a period that ended before it is empty, without a query.
    """
    out: dict[Key, Counts] = {("city", CITY): Counts()}
    if since is not None and period.end <= since:
        return out

    def put(kind: ScopeKind, scope: str, **values: Any) -> None:
        key = (kind, scope)
        out[key] = replace(out.get(key, Counts()), **values)

    for kind in kinds:
        for scope, values in step_counts(session, kind, period).items():
            put(kind, scope, **values)
        for scope, n in filed_and_closed(session, kind, period).items():
            put(kind, scope, filed_and_closed=n)
        for scope, m in medians(session, kind, lc.FILED, period).items():
            put(kind, scope, median_filing_seconds=m)
        for scope, m in medians(session, kind, lc.CLOSED, period).items():
            put(kind, scope, median_closing_seconds=m)
        for scope, (active, first) in reporters(session, kind, period).items():
            put(kind, scope, active_reporters=active, first_time_reporters=first)
        for scope, p in points(session, kind, period).items():
            put(kind, scope, points=p)
        for scope, s in satisfaction(session, kind, period).items():
            if s.total:
                put(kind, scope, rated=s.total, satisfied=s.satisfied + s.basic)
    return out
