"""The intake inbox (ORM): every accepted event stored raw before it is applied."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rewards.db import Base, UTCDateTime

PENDING = "pending"
APPLIED = "applied"
FAILED = "failed"
INBOX_STATUSES = (PENDING, APPLIED, FAILED)


class InboxEvent(Base):
    """One event from the city's case system, kept raw; its event_id makes a replay a no-op."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(64))  # as sent, even when unknown (then the event failed)
    case_id: Mapped[str | None] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None when the event did not carry one
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(Text)  # the event's JSON, canonical form (sorted keys)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | applied | failed
    error: Mapped[str | None] = mapped_column(Text)  # "[<http status> <code>] <reason>" of the last failure
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
