"""Case and citizen queries and writes that belong to the cases domain alone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rewards.cases.models import AuditEntry, Case, CaseHistory, Citizen, CitizenChange
from rewards.db import insert_or_ignore
from rewards.errors import NotFound


def get_case(session: Session, case_id: str, *, lock: bool = False) -> Case:
    """Return the case with the city's case id, or raise NotFound (404); lock=True serialises writers."""
    stmt = select(Case).where(Case.case_id == case_id)
    if lock:
        stmt = stmt.with_for_update(of=Case)
    case = session.scalar(stmt)
    if case is None:
        raise NotFound(f"unknown case {case_id!r}", code="unknown_case")
    return case


def find_case(session: Session, case_id: str) -> Case | None:
    """Return the case with the city's case id, or None."""
    return session.scalar(select(Case).where(Case.case_id == case_id))


def get_citizen(session: Session, openid: str) -> Citizen:
    """Return the citizen with this openid, or raise NotFound (404)."""
    citizen = session.scalar(select(Citizen).where(Citizen.openid == openid))
    if citizen is None:
        raise NotFound("unknown citizen", code="unknown_citizen")
    return citizen


def find_citizen(session: Session, openid: str) -> Citizen | None:
    """Return the citizen with this openid, or None."""
    return session.scalar(select(Citizen).where(Citizen.openid == openid))


def upsert_citizen(
    session: Session,
    openid: str,
    now: datetime,
    *,
    name: str | None = None,
    phone: str | None = None,
    district: str | None = None,
    verified: bool | None = None,
    snapshot_user: bool | None = None,
) -> Citizen:
    """Create the citizen or refresh the fields given (None leaves a field as it is)."""
    citizen = find_citizen(session, openid)
    if citizen is None:  # two first reports of one citizen at once: one insert wins, both read the same row
        fresh = {"verified": False, "banned": False, "snapshot_user": False, "created_at": now, "updated_at": now}
        insert_or_ignore(session, Citizen, {"openid": openid, **fresh}, ("openid",))
        citizen = find_citizen(session, openid)
        assert citizen is not None
    changes = {
        "name": name,
        "phone": phone,
        "district": district,
        "verified": verified,
        "snapshot_user": snapshot_user,
    }
    for field, value in changes.items():
        if value is not None and getattr(citizen, field) != value:
            setattr(citizen, field, value)
            citizen.updated_at = now
    session.flush()
    return citizen


def sign_in_citizen(session: Session, openid: str, now: datetime, *, snapshot_user: bool = False) -> Citizen:
    """Create the citizen on first sign-in; flag a WeChat snapshot-page user (is_snapshotuser=1), never unflag."""
    return upsert_citizen(session, openid, now, snapshot_user=True if snapshot_user else None)


def queue(session: Session, status: str, limit: int = 100, offset: int = 0) -> Sequence[Case]:
    """Return cases in a status, oldest report first (the validators' queue)."""
    stmt = select(Case).where(Case.status == status).order_by(Case.reported_at, Case.id).limit(limit).offset(offset)
    return session.scalars(stmt).all()


def cases_of_citizen(session: Session, citizen_id: int) -> Sequence[Case]:
    """Return a citizen's reports, newest first."""
    stmt = select(Case).where(Case.reporter_id == citizen_id).order_by(Case.reported_at.desc(), Case.id.desc())
    return session.scalars(stmt).all()


def record_history(
    session: Session,
    case: Case,
    status: str,
    *,
    occurred_at: datetime,
    recorded_at: datetime,
    actor: str,
    source: str,
    department: str | None = None,
    note: str | None = None,
    event_id: str | None = None,
    applied: bool = True,
) -> CaseHistory:
    """Append one step to a case's history."""
    row = CaseHistory(
        case_pk=case.id,
        status=status,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        actor=actor,
        source=source,
        department=department,
        note=note,
        event_id=event_id,
        applied=applied,
    )
    session.add(row)
    return row


def audit(session: Session, at: datetime, actor: str, action: str, target: str, detail: str | None = None) -> None:
    """Append an audit-log line: who did what to which target."""
    session.add(AuditEntry(at=at, actor=actor, action=action, target=target, detail=detail))


def record_citizen_change(session: Session, citizen_id: int, at: datetime) -> None:
    """Note that a citizen moved between boards (eligibility or district), for the projector to replay."""
    session.add(CitizenChange(citizen_id=citizen_id, at=at))
