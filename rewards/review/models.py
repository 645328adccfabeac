"""The review of a published week (ORM): the sealed candidate pool, list versions, objections, decisions,
the final list and prize claims.

Sealed rows (`review_pools`, `review_versions`) are written once and never changed: the database refuses UPDATE
(and, on PostgreSQL, DELETE) of them (migration 0006), and every load re-checks the stored canonical text against
its checksum. Objections move open -> rejected | upheld | moot, once; a decision is one row per objection.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rewards.db import Base, UTCDateTime

# objection states
OPEN, REJECTED, UPHELD, MOOT = "open", "rejected", "upheld", "moot"
OBJECTION_STATES = (OPEN, REJECTED, UPHELD, MOOT)
OBJECTION_LABELS = {
    OPEN: "待处理",
    REJECTED: "未采纳",
    UPHELD: "已采纳",
    MOOT: "已处理（该条目已因其他异议撤下）",
}
# what an upheld objection does to the entry
VOID_CASE, DISQUALIFY = "void_case", "disqualify"
ACTIONS = (VOID_CASE, DISQUALIFY)
# claim states (computed on read from the stored facts and the clock; only redeemed_* is ever written)
CLAIM_PENDING, CLAIM_REDEEMED, CLAIM_EXPIRED, CLAIM_REVOKED = "pending", "redeemed", "expired", "revoked"
CLAIM_LABELS = {
    CLAIM_PENDING: "待领取",
    CLAIM_REDEEMED: "已领取",
    CLAIM_EXPIRED: "逾期未领",
    CLAIM_REVOKED: "已失效",
}


class ReviewPool(Base):
    """The sealed candidate ranking of a closed week: the snapshot's winners, then the next eligible citizens.

    Sealed once, the first time the week's review is read; every list version derives from it.
    """

    __tablename__ = "review_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)
    snapshot_checksum: Mapped[str] = mapped_column(String(64))  # the weekly snapshot it extends
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    canonical: Mapped[str] = mapped_column(Text)  # derive.pool_bytes(): re-checked on every load
    checksum: Mapped[str] = mapped_column(String(64))


class ListVersion(Base):
    """One sealed version of a week's prize list: 1 is the notice list, each upheld objection adds one."""

    __tablename__ = "review_versions"
    __table_args__ = (UniqueConstraint("week", "number", name="uq_review_versions_week_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), index=True)
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("review_decisions.id"))  # None for version 1
    canonical: Mapped[str] = mapped_column(Text)  # derive.version_bytes(): re-checked on every load
    checksum: Mapped[str] = mapped_column(String(64))


class Objection(Base):
    """A citizen's objection (异议) to one entry of a week's list: one per citizen per entry."""

    __tablename__ = "review_objections"
    __table_args__ = (
        UniqueConstraint("week", "objector_id", "target_citizen_id", name="uq_review_objections_entry"),
        CheckConstraint("status IN ('open','rejected','upheld','moot')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), index=True)
    objector_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    rank: Mapped[int] = mapped_column(Integer)  # the rank objected to, in version `version_number`
    version_number: Mapped[int] = mapped_column(Integer)
    target_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    target_name: Mapped[str] = mapped_column(String(64))  # masked, as shown on the list
    reason: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))  # web | api | wechat
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("review_decisions.id"))


class Decision(Base):
    """The command center's decision on one objection (append-only)."""

    __tablename__ = "review_decisions"
    __table_args__ = (CheckConstraint("outcome IN ('rejected','upheld')", name="outcome"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    objection_id: Mapped[int] = mapped_column(Integer, unique=True)  # review_objections.id (no FK: a cycle)
    week: Mapped[str] = mapped_column(String(8), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # rejected | upheld
    action: Mapped[str | None] = mapped_column(String(16))  # void_case | disqualify (upheld only)
    case_id: Mapped[str | None] = mapped_column(String(64))  # the voided case (void_case only)
    target_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))
    reason: Mapped[str] = mapped_column(Text)  # shown to the objector
    actor: Mapped[str] = mapped_column(String(128))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FinalList(Base):
    """The week's final list (定榜): which version, when, and how far its announcement has gone."""

    __tablename__ = "review_finals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), unique=True)
    version_number: Mapped[int] = mapped_column(Integer)
    checksum: Mapped[str] = mapped_column(String(64))  # the final version's checksum
    finalized_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the 定榜 publication completed
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the winner notices went out


class Claim(Base):
    """A final winner's prize claim: a single-use code bound to the week and the citizen."""

    __tablename__ = "review_claims"
    __table_args__ = (UniqueConstraint("week", "citizen_id", name="uq_review_claims_week_citizen"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    week: Mapped[str] = mapped_column(String(8), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # secrets-drawn, shown on /me and in the notice
    rank: Mapped[int] = mapped_column(Integer)
    tier: Mapped[str] = mapped_column(Text)
    prize: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_by: Mapped[str | None] = mapped_column(String(128))
