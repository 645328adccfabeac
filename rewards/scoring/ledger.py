"""The SQL ledger: append-only, one row per (case, rule); the only source of truth for points."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Executable, ForeignKey, Integer, String, Table, Text, UniqueConstraint, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from rewards.cases.models import Citizen
from rewards.db import Base, UTCDateTime, flush_rows
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


def insert_entry(session: Session, decision: AwardDecision, week: str, now: datetime) -> LedgerEntry | None:
    """Insert the decision unless (case, rule) already has a row; return the new row or None (replay)."""
    values = {
        "citizen_id": decision.citizen_id,
        "case_pk": decision.case_pk,
        "rule": decision.rule,
        "points": decision.points,
        "week": week,
        "reason": decision.reason,
        "created_at": now,
    }
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


def entry_facts(entry: LedgerEntry, district: str | None, eligible: bool) -> EntryFacts:
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


def facts_for_entries(
    session: Session, entries: Sequence[LedgerEntry], known: Sequence[Citizen] = ()
) -> list[EntryFacts]:
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
