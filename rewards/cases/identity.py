"""Linked WeChat identities: each (app, openid) belongs to exactly one citizen; unionids; pending links; merges.

A citizen's canonical identity stays `citizens.openid` (sessions, the boards, every existing lookup). This table
records which openids of which app sign in as that citizen, and the unionid WeChat returned with each one. Every
row that carries a given unionid points to the same citizen (rewards.cases.linking keeps it so): a conflict
between two established citizens is recorded as a pending link instead, and only an administrator's merge
(rewards.scoring.merge) joins them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from rewards.cases.models import Citizen
from rewards.db import Base, UTCDateTime, insert_or_ignore

PENDING = "pending"
MERGED = "merged"


class CitizenIdentity(Base):
    """One app's openid of a citizen, with the unionid WeChat returned for it (when it did)."""

    __tablename__ = "citizen_identities"
    __table_args__ = (UniqueConstraint("app", "openid", name="uq_citizen_identities_app"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(8))  # mp | wxa
    openid: Mapped[str] = mapped_column(String(128))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    unionid: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdentityLink(Base):
    """A unionid that joins two established citizens: pending until an administrator merges them."""

    __tablename__ = "identity_links"
    __table_args__ = (UniqueConstraint("from_citizen_id", "into_citizen_id", name="uq_identity_links_from_citizen_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))  # who signed in (the openid's owner)
    into_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"))  # who holds the unionid
    app: Mapped[str] = mapped_column(String(8))
    openid: Mapped[str] = mapped_column(String(128))
    unionid: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # pending | merged
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(128))


class CitizenMerge(Base):
    """An administrator's merge of one citizen into another (each citizen is merged away at most once)."""

    __tablename__ = "citizen_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), unique=True)
    into_citizen_id: Mapped[int] = mapped_column(ForeignKey("citizens.id"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    cases_moved: Mapped[int] = mapped_column(Integer)
    entries_moved: Mapped[int] = mapped_column(Integer)
    points_moved: Mapped[int] = mapped_column(Integer)


def find_identity(session: Session, app: str, openid: str) -> CitizenIdentity | None:
    """Return the identity row of an app's openid, or None."""
    return session.scalar(select(CitizenIdentity).where(CitizenIdentity.app == app, CitizenIdentity.openid == openid))


def owner_of(session: Session, app: str, openid: str) -> Citizen | None:
    """Return the citizen an app's openid signs in as: its identity row, else the citizen whose canonical openid it
    is (one known only from reports), followed through the merges that moved it away."""
    row = find_identity(session, app, openid)
    if row is not None:
        return session.get(Citizen, row.citizen_id)
    citizen = session.scalar(select(Citizen).where(Citizen.openid == openid))
    seen: set[int] = set()
    while citizen is not None and citizen.id not in seen:  # a merge never targets a merged citizen; guard anyway
        seen.add(citizen.id)
        merge = merge_of(session, citizen.id)
        if merge is None:
            break
        citizen = session.get(Citizen, merge.into_citizen_id)
    return citizen


def union_owner(session: Session, unionid: str) -> Citizen | None:
    """Return the citizen a unionid is linked to, or None."""
    stmt = select(CitizenIdentity.citizen_id).where(CitizenIdentity.unionid == unionid).order_by(CitizenIdentity.id)
    citizen_id = session.scalars(stmt.limit(1)).first()
    return None if citizen_id is None else session.get(Citizen, citizen_id)


def attach(session: Session, app: str, openid: str, citizen_id: int, unionid: str | None, now: datetime) -> None:
    """Point an app's openid at a citizen (creating its row), recording the unionid when given; refresh seen_at."""
    values = {
        "app": app,
        "openid": openid,
        "citizen_id": citizen_id,
        "unionid": unionid,
        "created_at": now,
        "seen_at": now,
    }
    if insert_or_ignore(session, CitizenIdentity, values, ("app", "openid")) is not None:
        return
    row = find_identity(session, app, openid)
    assert row is not None
    row.citizen_id = citizen_id
    row.seen_at = now
    if unionid is not None and row.unionid is None:
        row.unionid = unionid
    session.flush()


def move_identities(session: Session, from_id: int, into_id: int) -> int:
    """Point every openid of one citizen at another; return how many rows moved."""
    result = session.execute(
        update(CitizenIdentity).where(CitizenIdentity.citizen_id == from_id).values(citizen_id=into_id)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult for an UPDATE


def record_pending(session: Session, pair: tuple[int, int], app: str, openid: str, unionid: str, now: datetime) -> bool:
    """Record a pending link between two established citizens (once per pair); True when it is new."""
    values = {
        "from_citizen_id": pair[0],
        "into_citizen_id": pair[1],
        "app": app,
        "openid": openid,
        "unionid": unionid,
        "state": PENDING,
        "created_at": now,
    }
    return insert_or_ignore(session, IdentityLink, values, ("from_citizen_id", "into_citizen_id")) is not None


def pending_links(session: Session) -> list[IdentityLink]:
    """Return the pending links, oldest first."""
    stmt = select(IdentityLink).where(IdentityLink.state == PENDING).order_by(IdentityLink.id)
    return list(session.scalars(stmt).all())


def merge_of(session: Session, citizen_id: int) -> CitizenMerge | None:
    """Return the merge that moved this citizen away, or None."""
    return session.scalar(select(CitizenMerge).where(CitizenMerge.from_citizen_id == citizen_id))
