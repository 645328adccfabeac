"""Citizens, cases and their append-only status history (ORM)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rewards.db import Base, UTCDateTime


class Citizen(Base):
    """A WeChat user who reports problems; the openid never leaves the service."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    openid: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot_user: Mapped[bool] = mapped_column(Boolean, default=False)  # WeChat is_snapshotuser=1
    # set by an administrator's merge (rewards citizens merge): lookups by this citizen's openid find that citizen
    merged_into_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CitizenChange(Base):
    """A change that moves a citizen between boards (eligibility, district): the projector replays it on Redis.

    Written in the same transaction as the change, so a board update lost with Redis is never lost for good.
    """

    __tablename__ = "citizen_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Case(Base):
    """One report as the city's case system knows it."""

    __tablename__ = "cases"
    __table_args__ = (Index("ix_cases_status_reported_at", "status", "reported_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(String(64), unique=True)  # the city's case id
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    coord_system: Mapped[str] = mapped_column(String(8), default="wgs84")  # as reported: wgs84 | gcj02
    address: Mapped[str | None] = mapped_column(String(256))
    district: Mapped[str | None] = mapped_column(String(64), index=True)
    photos: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    status_at: Mapped[datetime] = mapped_column(UTCDateTime)  # occurred_at of the event that set status
    verdict: Mapped[str | None] = mapped_column(String(16))  # valid | invalid | duplicate
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[str | None] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(128))
    award_note: Mapped[str | None] = mapped_column(Text)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the case system's deadline, if it sends one
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    reporter: Mapped[Citizen | None] = relationship(lazy="joined")
    history: Mapped[list[CaseHistory]] = relationship(
        back_populates="case", order_by="(CaseHistory.occurred_at, CaseHistory.id)", lazy="selectin"
    )


class CaseHistory(Base):
    """An accepted (or recorded-late) step in a case's life; append-only, ordered by occurred_at."""

    __tablename__ = "case_history"
    __table_args__ = (Index("ix_case_history_case_occurred", "case_pk", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_pk: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(32))  # console | intake | system
    department: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    event_id: Mapped[str | None] = mapped_column(String(128))
    applied: Mapped[bool] = mapped_column(Boolean, default=True)  # False: arrived late, kept for the record

    case: Mapped[Case] = relationship(back_populates="history")


class AuditEntry(Base):
    """Who did what from the console or API (append-only)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str | None] = mapped_column(Text)
