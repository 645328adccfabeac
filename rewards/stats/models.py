"""The sealed record of closed periods (ORM), and the indexes the record's range queries read.

One row per (period, scope kind, scope): the counts of `rewards.stats.figures.Counts`. The city-wide row of a
period is always written, so its presence says the period is sealed. Rows are written once (insert or ignore) and
never updated: a period is sealed only after it has ended and settled (`StatsService`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rewards.cases.models import CaseHistory
from rewards.db import Base, UTCDateTime
from rewards.scoring.ledger import LedgerEntry


class StatsFigures(Base):
    """The counts of one scope in one sealed period."""

    __tablename__ = "stats_figures"
    __table_args__ = (UniqueConstraint("period", "scope_kind", "scope", name="uq_stats_figures_period_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(16))  # 2026-W48 | 2026-11
    scope_kind: Mapped[str] = mapped_column(String(16))  # city | district | department
    scope: Mapped[str] = mapped_column(String(128))  # "" for the city
    received: Mapped[int] = mapped_column(Integer)
    filed: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    dispatched: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    filed_and_closed: Mapped[int] = mapped_column(Integer)
    closed_with_deadline: Mapped[int] = mapped_column(Integer)
    closed_on_time: Mapped[int] = mapped_column(Integer)
    median_filing_seconds: Mapped[float | None] = mapped_column(Float)
    median_closing_seconds: Mapped[float | None] = mapped_column(Float)
    active_reporters: Mapped[int] = mapped_column(Integer)
    first_time_reporters: Mapped[int] = mapped_column(Integer)
    rated: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


# The record reads steps of the case history and ledger lines by time range: an index for each (declared here, by
# the module that needs them; created by migration 0009)
HISTORY_BY_STATUS_TIME = Index("ix_case_history_status_occurred_at", CaseHistory.status, CaseHistory.occurred_at)
LEDGER_BY_TIME = Index("ix_ledger_entries_created_at", LedgerEntry.created_at)
