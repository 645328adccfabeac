"""The SQL ledger: append-only, one row per (case, rule); the only source of truth for points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Executable, ForeignKey, Integer, String, Table, Text, UniqueConstraint, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from rewards.cases.models import Citizen
from rewards.db import Base, UTCDateTime, flush_rows, insert_rows
from rewards.scoring.model import RULE_VALID_REPORT, AwardDecision, EntryFacts
from rewards.scoring.rules import is_eligible


class LedgerEntry(Base):
    """A signed award or reversal; never updated, never deleted."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("case_pk", "rule", name="uq_ledger_case_rule"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    rule: Mapped[str] = mapped_column(String(32))
    points: Mapped[int] = mapped_column(Integer)
    week: Mapped[str] = mapped_column(String(8), index=True)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def line_values(decision: AwardDecision, week: str, now: datetime) -> dict[str, Any]:
    """A decided award as the ledger row's values by column name (without its id)."""
    return {
        "citizen_id": decision.citizen_id,
        "case_pk": decision.case_pk,
        "rule": decision.rule,
        "points": decision.points,
        "week": week,
        "reason": decision.reason,
        "created_at": now,
    }


def insert_entry(session: Session, decision: AwardDecision, week: str, now: datetime) -> LedgerEntry | None:
    """Insert the decision unless (case, rule) already has a row; return the new row or None (replay)."""
    values = line_values(decision, week, now)
    stmt = _insert_statement(session.get_bind().dialect.name)
    # RETURNING the whole row instead of reading it back; the flow's queued history/audit rows ride along
    result = flush_rows(session, stmt, {f"e_{column}": value for column, value in values.items()})
    row = result.first() if result is not None else None
    if row is None:
        return None
    entry = LedgerEntry(**row._asdict())
    make_transient_to_detached(entry)  # a persistent row as the database returned it: no SELECT to load it
    session.add(entry)
    return entry


_INSERTS: dict[str, Executable] = {}


def _insert_statement(dialect: str) -> Executable:
    """INSERT … ON CONFLICT (case, rule) DO NOTHING RETURNING the row, with bound `e_{column}` values.

    Built once per dialect: the same statement object every time keeps its cache key, so it is compiled once, and
    `flush_rows` caches the statement it builds around it (the history and audit rows riding along as CTEs).
    """
    stmt = _INSERTS.get(dialect)
    if stmt is None:
        table = cast(Table, LedgerEntry.__table__)
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        columns = [c for c in table.columns if not c.primary_key]
        stmt = (
            insert(table)
            .values({c.name: bindparam(f"e_{c.name}", type_=c.type) for c in columns})
            .on_conflict_do_nothing(index_elements=["case_pk", "rule"])
            .returning(*table.columns)
        )
        _INSERTS[dialect] = stmt
    return stmt


class PendingLedger:
    """A batch's ledger lines, written together at its end: one INSERT … ON CONFLICT (case_pk, rule) DO NOTHING
    RETURNING for all of them (`db.insert_rows`: one JSON parameter on PostgreSQL), after the batch's cases.

    Until then the batch's reads of the ledger see them as if written: the daily award count and a case's lines
    (a void in the same batch reverses them). Nothing else writes ledger lines in the batch's transaction meanwhile,
    so a citizen's committed count for a day is read once per batch and the batch's own lines added to it.
    """

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []  # the rows to INSERT, by column name, in decision order
        self.known: dict[int, Citizen] = {}  # citizens loaded (and locked with their cases) by the batch
        self._by_case: dict[int, list[dict[str, Any]]] = {}
        self._stored_counts: dict[tuple[int, str, datetime, datetime], int] = {}

    def add(self, decision: AwardDecision, week: str, now: datetime, known: Citizen | None = None) -> None:
        """Queue the decided line (a second line for the same (case, rule) is dropped, as the INSERT would)."""
        same_case = self._by_case.setdefault(decision.case_pk, [])
        if any(line["rule"] == decision.rule for line in same_case):
            return
        line = line_values(decision, week, now)
        self.lines.append(line)
        same_case.append(line)
        if known is not None:
            self.known[known.id] = known

    def lines_for_case(self, case_pk: int) -> list[tuple[int, str, int]]:
        """The case's queued lines as (citizen_id, rule, points)."""
        return [(line["citizen_id"], line["rule"], line["points"]) for line in self._by_case.get(case_pk, [])]

    def awards_on_day(self, session: Session, citizen_id: int, start: datetime, end: datetime, rule: str) -> int:
        """`count_awards_on_day` counting this batch's queued awards too (the committed count read once)."""
        key = (citizen_id, rule, start, end)
        stored = self._stored_counts.get(key)
        if stored is None:
            with session.no_autoflush:  # ledger rows are never ORM objects: the batch's pending cases may wait
                stored = self._stored_counts[key] = count_awards_on_day(session, citizen_id, start, end, rule)
        queued = sum(
            1
            for line in self.lines
            if line["citizen_id"] == citizen_id
            and line["rule"] == rule
            and line["points"] > 0
            and start <= line["created_at"] < end
        )
        return stored + queued

    def write(self, session: Session) -> list[EntryFacts]:
        """Insert the queued lines (after the batch's cases and citizens are flushed); return the rows inserted, as
        the boards apply them (a line whose (case, rule) already had a row is not returned: nothing to apply)."""
        if not self.lines:
            return []
        table = cast(Table, LedgerEntry.__table__)
        result = insert_rows(
            session, table, self.lines, conflict=("case_pk", "rule"), returning=tuple(table.c.keys()), with_queued=True
        )
        assert result is not None
        rows = result.all()
        self.lines, self._by_case = [], {}
        return facts_for_entries(session, rows, list(self.known.values()))


def entries_for_case(session: Session, case_pk: int) -> Sequence[LedgerEntry]:
    """Return a case's ledger rows in order."""
    return session.scalars(select(LedgerEntry).where(LedgerEntry.case_pk == case_pk).order_by(LedgerEntry.id)).all()


def entries_for_citizen(session: Session, citizen_id: int, week: str | None = None) -> Sequence[LedgerEntry]:
    """Return a citizen's ledger rows, newest first, optionally for one week."""
    stmt = select(LedgerEntry).where(LedgerEntry.citizen_id == citizen_id)
    if week is not None:
        stmt = stmt.where(LedgerEntry.week == week)
    return session.scalars(stmt.order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())).all()


def total_for_citizen(session: Session, citizen_id: int, week: str | None = None) -> int:
    """Return the sum of a citizen's ledger (optionally for one week)."""
    stmt = select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(LedgerEntry.citizen_id == citizen_id)
    if week is not None:
        stmt = stmt.where(LedgerEntry.week == week)
    return int(session.execute(stmt).scalar_one())


def count_awards_on_day(
    session: Session, citizen_id: int, start: datetime, end: datetime, rule: str = RULE_VALID_REPORT
) -> int:
    """Return how many positive awards of one rule a citizen received in [start, end) (for a daily limit).

    Per rule: the daily limit on valid reports and the daily cap on rating awards count separately.
    """
    stmt = select(func.count(LedgerEntry.id)).where(
        LedgerEntry.citizen_id == citizen_id,
        LedgerEntry.rule == rule,
        LedgerEntry.points > 0,
        LedgerEntry.created_at >= start,
        LedgerEntry.created_at < end,
    )
    return int(session.execute(stmt).scalar_one())


class _Entry(Protocol):
    """A ledger row as read: an ORM entry or a Core row RETURNed by an INSERT."""

    @property
    def id(self) -> int: ...
    @property
    def citizen_id(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def week(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def entry_facts(entry: _Entry, district: str | None, eligible: bool) -> EntryFacts:
    """Return the frozen view of a committed entry that the leaderboards apply."""
    return EntryFacts(
        entry_id=entry.id,
        citizen_id=entry.citizen_id,
        district=district,
        points=entry.points,
        week=entry.week,
        created_at=entry.created_at,
        eligible=eligible,
    )


def facts_for_entries(session: Session, entries: Sequence[_Entry], known: Sequence[Citizen] = ()) -> list[EntryFacts]:
    """Return EntryFacts for entries, with each citizen's district and prize eligibility.

    `known`: citizens already loaded in this session (e.g. the case's reporter, locked with it): not read again.
    """
    info = {c.id: (c.district, is_eligible(c.verified, c.banned)) for c in known}
    ids = {e.citizen_id for e in entries} - info.keys()
    if ids:
        rows = session.execute(
            select(Citizen.id, Citizen.district, Citizen.verified, Citizen.banned).where(Citizen.id.in_(ids))
        )
        info |= {cid: (district, is_eligible(verified, banned)) for cid, district, verified, banned in rows}
    return [entry_facts(e, *info[e.citizen_id]) for e in entries]
