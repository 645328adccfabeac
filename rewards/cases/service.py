"""Case and citizen queries and writes that belong to the cases domain alone."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session, lazyload

from rewards.cases.models import AuditEntry, Case, CaseHistory, Citizen, CitizenChange
from rewards.db import add_row, insert_or_ignore_object
from rewards.errors import NotFound

# A batch (intake) preloads the cases and citizens it touches in two statements, the cases locked; the lookups below
# then answer from these session-scoped maps instead of one SELECT each. Outside a batch there are no maps.
_CASES = "rewards.cases_by_case_id"  # case_id -> Case (locked by the batch), or None: known not to exist
_CITIZENS = "rewards.citizens_by_openid"  # openid -> Citizen, or None: known not to exist (preloaded and absent)


def preload(session: Session, case_ids: Collection[str], openids: Collection[str]) -> None:
    """Lock the batch's cases (in id order: two batches never wait on each other in a cycle) and load its citizens."""
    found = session.scalars(
        select(Case)
        .where(Case.case_id.in_(case_ids))
        .options(lazyload(Case.history))
        .order_by(Case.id)
        .with_for_update(of=Case)
    ).all()
    by_id: dict[str, Case | None] = dict.fromkeys(case_ids)
    by_id |= {c.case_id: c for c in found}
    citizens = session.scalars(select(Citizen).where(Citizen.openid.in_(openids))).all() if openids else []
    session.info[_CASES] = by_id
    # an openid absent here is remembered as absent: a new citizen's first report inserts it without a SELECT
    by_openid: dict[str, Citizen | None] = dict.fromkeys(openids)
    session.info[_CITIZENS] = by_openid | {c.openid: successor(session, c) for c in citizens}


def forget_preloaded(session: Session) -> None:
    """Drop the batch's maps (a step was rolled back: objects it touched may be gone); lookups query again."""
    session.info.pop(_CASES, None)
    session.info.pop(_CITIZENS, None)


def remember_case(session: Session, case: Case) -> None:
    """Note a case created in this batch (a later event of the batch finds it without a query)."""
    cache: dict[str, Case | None] | None = session.info.get(_CASES)
    if cache is not None:
        cache[case.case_id] = case


# a write's read: the case locked (with its reporter, joined), its timeline loaded only if read (an answer, in the
# same session), not every time; built once, so its cache key is computed once
_LOCKED_CASE = (
    select(Case).where(Case.case_id == bindparam("case_id")).options(lazyload(Case.history)).with_for_update(of=Case)
)


def get_case(session: Session, case_id: str, *, lock: bool = False) -> Case:
    """Return the case with the city's case id, or raise NotFound (404); lock=True serialises writers."""
    cache: dict[str, Case | None] | None = session.info.get(_CASES)
    if cache is not None and case_id in cache:  # preloaded (and locked) by this batch, or created in it
        case = cache[case_id]
    else:
        if lock:
            case = session.scalar(_LOCKED_CASE, {"case_id": case_id})
        else:
            case = session.scalar(select(Case).where(Case.case_id == case_id))
    if case is None:
        raise NotFound(f"unknown case {case_id!r}", code="unknown_case")
    return case


# the timeline's columns as one Core statement built once (a cached compiled form, plain rows, no ORM objects)
_history = CaseHistory.__table__.c
_TIMELINE = (
    select(_history.status, _history.occurred_at, _history.department, _history.note, _history.applied)
    .where(_history.case_pk == bindparam("case_pk"))
    .order_by(_history.occurred_at, _history.id)
)


def timeline(session: Session, case_pk: int) -> Sequence[Row[str, datetime, str | None, str | None, bool]]:
    """The case's history as (status, occurred_at, department, note, applied) rows, in `Case.history`'s order,
    including rows this transaction wrote (an answer built right after a flow's writes shows its new step)."""
    return session.execute(_TIMELINE, {"case_pk": case_pk}).all()


def find_case(session: Session, case_id: str) -> Case | None:
    """Return the case with the city's case id, or None."""
    cache: dict[str, Case | None] | None = session.info.get(_CASES)
    if cache is not None and case_id in cache:
        return cache[case_id]
    return session.scalar(select(Case).where(Case.case_id == case_id))


def case_status(session: Session, case_id: str) -> str | None:
    """Return the case's status, or None when there is no such case (a batch answers from its preloaded cases)."""
    cache: dict[str, Case | None] | None = session.info.get(_CASES)
    if cache is not None and case_id in cache:
        case = cache[case_id]
        return case.status if case is not None else None
    return session.scalar(select(Case.status).where(Case.case_id == case_id))


def get_citizen(session: Session, openid: str) -> Citizen:
    """Return the citizen with this openid, or raise NotFound (404)."""
    citizen = find_citizen(session, openid)
    if citizen is None:
        raise NotFound("unknown citizen", code="unknown_citizen")
    return citizen


def find_citizen(session: Session, openid: str) -> Citizen | None:
    """Return the citizen with this openid, or None."""
    cache: dict[str, Citizen | None] | None = session.info.get(_CITIZENS)
    if cache is not None and openid in cache:
        return cache[openid]
    return _load_citizen(session, openid)


def _load_citizen(session: Session, openid: str) -> Citizen | None:
    """Read the citizen (or its successor) from the database; a batch remembers a citizen found."""
    citizen = session.scalar(select(Citizen).where(Citizen.openid == openid))
    if citizen is not None:
        citizen = successor(session, citizen)
    cache: dict[str, Citizen | None] | None = session.info.get(_CITIZENS)
    if cache is not None and citizen is not None:
        cache[openid] = citizen
    return citizen


def successor(session: Session, citizen: Citizen) -> Citizen:
    """The citizen that stands for this one: itself, or the citizen an administrator merged it into (reports and
    sign-ins under a merged citizen's openid belong to the merged account)."""
    seen = {citizen.id}
    while citizen.merged_into_id is not None and citizen.merged_into_id not in seen:  # a merge never targets a
        nxt = session.get(Citizen, citizen.merged_into_id)  # merged citizen; the guard keeps a bad row from looping
        if nxt is None:
            break
        seen.add(nxt.id)
        citizen = nxt
    return citizen


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
    shown_changed = citizen is None  # a new citizen, or a new name/phone: the Redis copy a standing reads follows
    changes = {
        "name": name,
        "phone": phone,
        "district": district,
        "verified": verified,
        "snapshot_user": snapshot_user,
    }
    if citizen is None:
        citizen = _insert_citizen(session, openid, now, changes)
    for field, value in changes.items():
        if value is not None and getattr(citizen, field) != value:
            setattr(citizen, field, value)
            citizen.updated_at = now
            shown_changed = shown_changed or field in ("name", "phone")
    if shown_changed:
        record_citizen_change(session, citizen.id, now)  # the projector restates the citizen's data in Redis
    session.flush()
    return citizen


def _insert_citizen(session: Session, openid: str, now: datetime, given: Mapping[str, object]) -> Citizen:
    """Insert a new citizen with the fields given, returned as an ORM object by the INSERT itself (no SELECT).

    Two first reports of one citizen at once: one insert wins, the other inserts nothing and reads the winner's row
    (the caller then applies its fields as changes)."""
    fresh: dict[str, object] = {"verified": False, "banned": False, "snapshot_user": False}
    fresh |= {field: value for field, value in given.items() if value is not None}
    values = {"openid": openid, **fresh, "created_at": now, "updated_at": now}
    citizen: Citizen | None = insert_or_ignore_object(session, Citizen, values, ("openid",))
    if citizen is None:
        citizen = _load_citizen(session, openid)
        assert citizen is not None  # the conflicting row is committed (ON CONFLICT waited for it) and never deleted
    cache: dict[str, Citizen | None] | None = session.info.get(_CITIZENS)
    if cache is not None:
        cache[openid] = citizen
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


def queue_history(
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
) -> None:
    """Append one step to a case's history with the next `flush_rows` (one statement with the flow's other rows)."""
    values = {
        "case_pk": case.id,
        "status": status,
        "occurred_at": occurred_at,
        "recorded_at": recorded_at,
        "actor": actor,
        "source": source,
        "department": department,
        "note": note,
        "event_id": event_id,
        "applied": applied,
    }
    add_row(session, CaseHistory, values)


def queue_audit(
    session: Session, at: datetime, actor: str, action: str, target: str, detail: str | None = None
) -> None:
    """Append an audit-log line with the next `flush_rows`."""
    add_row(session, AuditEntry, {"at": at, "actor": actor, "action": action, "target": target, "detail": detail})


def audit(session: Session, at: datetime, actor: str, action: str, target: str, detail: str | None = None) -> None:
    """Append an audit-log line: who did what to which target."""
    session.add(AuditEntry(at=at, actor=actor, action=action, target=target, detail=detail))


def record_citizen_change(session: Session, citizen_id: int, at: datetime) -> None:
    """Note that a citizen moved between boards (eligibility or district), for the projector to replay."""
    session.add(CitizenChange(citizen_id=citizen_id, at=at))
