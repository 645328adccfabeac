"""Case and citizen queries and writes that belong to the cases domain alone."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, Row, Text, any_, bindparam, func, inspect, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session, lazyload, make_transient_to_detached

from rewards.cases import lifecycle as lc
from rewards.cases.models import AuditEntry, Case, CaseHistory, Citizen, CitizenChange
from rewards.db import add_row, insert_or_ignore_object, insert_rows, note_on_commit, one_of
from rewards.errors import NotFound

# A batch (intake) preloads the cases and citizens it touches in two statements, the cases locked; the lookups below
# then answer from these session-scoped maps instead of one SELECT each. Outside a batch there are no maps.
_CASES = "rewards.cases_by_case_id"  # case_id -> Case (locked by the batch), or None: known not to exist
_CITIZENS = "rewards.citizens_by_openid"  # openid -> Citizen, or None: known not to exist (preloaded and absent)


def preload(session: Session, case_ids: Collection[str], openids: Collection[str], *, timelines: bool = False) -> None:
    """Lock the batch's cases (in id order: two batches never wait on each other in a cycle) and load its citizens.

    timelines=True (a batch of verdicts whose answers show the timeline, PostgreSQL): each case's timeline comes
    along and is kept for `timeline()` where it is complete, as `get_case(timeline=True)` keeps it for one case.
    """
    if timelines and session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_LOCKED_CASES_WITH_TIMELINES, {"case_ids": list(case_ids)}).all()
        found: Sequence[Case] = [row[0] for row in rows]
        for row in rows:
            _keep_timeline(session, row[0], row[1], row[2])
    else:
        stmt = (
            select(Case)
            .where(one_of(session, Case.case_id, case_ids))
            .options(lazyload(Case.history))
            .order_by(Case.id)
            .with_for_update(of=Case)
        )
        found = session.scalars(stmt).all()
    by_id: dict[str, Case | None] = dict.fromkeys(case_ids)
    by_id |= {c.case_id: c for c in found}
    citizens = session.scalars(select(Citizen).where(one_of(session, Citizen.openid, openids))).all() if openids else []
    session.info[_CASES] = by_id
    # an openid absent here is remembered as absent: a new citizen's first report inserts it without a SELECT
    by_openid: dict[str, Citizen | None] = dict.fromkeys(openids)
    session.info[_CITIZENS] = by_openid | {c.openid: successor(session, c) for c in citizens}


def forget_preloaded(session: Session) -> None:
    """Drop the batch's maps (a step was rolled back: objects it touched may be gone); lookups query again."""
    session.info.pop(_CASES, None)
    session.info.pop(_CITIZENS, None)
    session.info.pop(_NEW_IDS, None)
    session.info.pop(_NEW_CASES, None)
    session.info.pop(_TIMELINES, None)  # a rolled-back step may have added its own step to a kept timeline


# A set-based batch (intake's optimistic pass, PostgreSQL) takes the ids of its new cases from the sequence up front,
# in one statement: a report then needs no INSERT of its own to learn its case's id (its history row, ledger line
# and later events use it at once), and the batch's new cases go to the database in one INSERT at its end.
_NEW_IDS = "rewards.new_case_ids"  # [id, ...] reserved for this batch's new cases (present: the batch is set-based)
_CASE_IDS = Case.__table__.c.id


def reserve_case_ids(session: Session, n: int) -> bool:
    """Reserve `n` ids for the batch's new cases in one round trip (PostgreSQL); False where the database has no
    sequence to draw from (SQLite): its reports insert their case at once, as a single report does."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    ids: list[int] = []
    if n > 0:
        table, column = _CASE_IDS.table.name, _CASE_IDS.name  # the serial column's own sequence, whatever its name
        seq = func.pg_get_serial_sequence(table, column)
        stmt = select(func.nextval(seq)).select_from(func.generate_series(1, bindparam("n")))
        ids = [int(i) for i in session.execute(stmt, {"n": n}).scalars()]
    ids.reverse()  # handed out from the end: the batch's first new case gets the lowest id
    session.info[_NEW_IDS] = ids
    return True


def set_based(session: Session) -> bool:
    """Whether this batch writes its cases at its end (ids reserved up front): no flush per report or citizen."""
    return _NEW_IDS in session.info


def add_case(session: Session, case: Case) -> None:
    """Add a new case: in a set-based batch it takes a reserved id and waits for `insert_new_cases` at the batch's
    end; otherwise (or once the reserved ids are used up) it is inserted now, to learn its id."""
    reserved: list[int] | None = session.info.get(_NEW_IDS)
    session.add(case)
    if reserved:
        case.id = reserved.pop()
        session.info.setdefault(_NEW_CASES, []).append(case)
    else:
        session.flush()
    remember_case(session, case)


_NEW_CASES = "rewards.new_cases"  # [Case, ...] added with a reserved id, in order, not inserted yet
_CASE_COLUMNS = list(Case.__table__.c)
_DEFAULTED = [c for c in _CASE_COLUMNS if c.default is not None]  # Python-side defaults: description, photos, …


def insert_new_cases(session: Session) -> int:
    """Insert the set-based batch's new cases (as its events left them: a case reported and filed in the batch is
    inserted filed) in one statement, and show them to the session as loaded; return how many.

    One INSERT of plain rows where the ORM's flush spent most of its time bookkeeping each object. A case some query
    autoflushed meanwhile is already in and is left alone. Run before the session's flush (the rest of the batch's
    ORM changes) and before anything that refers to these cases (ledger lines, history rows)."""
    added: list[Case] = session.info.pop(_NEW_CASES, [])
    new = [case for case in added if inspect(case).pending]
    if not new:
        return 0
    rows = []
    for case in new:
        row = {c.key: getattr(case, c.key) for c in _CASE_COLUMNS}
        for c in _DEFAULTED:
            if row[c.key] is None:  # as the ORM's INSERT does: a column left empty gets its default
                row[c.key] = c.default.arg(None) if c.default.is_callable else c.default.arg
        rows.append(row)
    with session.no_autoflush:  # the ORM must not send these pending cases itself first
        insert_rows(session, Case.__table__, rows)
    for case, row in zip(new, rows, strict=True):
        held = case.__dict__
        for key, value in row.items():
            if key not in held or held[key] is not value:  # every column set: none expired (re-read) once loaded
                setattr(case, key, value)
        session.expunge(case)
        make_transient_to_detached(case)  # as if just loaded: clean, its identity the reserved id
        session.add(case)
        if row["verdict"] is not None:  # no flush shows this case to the metrics' listener: count its verdict
            note_on_commit(session, "verdict", row["verdict"])
    return len(new)


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
# the timeline's columns as one Core statement built once (a cached compiled form, plain rows, no ORM objects)
_history = CaseHistory.__table__.c
_TIMELINE_COLUMNS = (_history.status, _history.occurred_at, _history.department, _history.note, _history.applied)
_TIMELINE = (
    select(*_TIMELINE_COLUMNS)
    .where(_history.case_pk == bindparam("case_pk"))
    .order_by(_history.occurred_at, _history.id)
)


def _timeline_json() -> Any:
    """The timeline of the case being read as one JSON array of [status, occurred_at, department, note, applied]
    steps in the timeline's order (PostgreSQL): one subquery, one index scan (an array per column took five)."""
    ordered = aggregate_order_by(func.json_build_array(*_TIMELINE_COLUMNS), _history.occurred_at, _history.id)
    return select(func.json_agg(ordered)).where(_history.case_pk == Case.id).scalar_subquery()


def _timeline_row(step: list[Any]) -> TimelineRow:
    """One step of `_timeline_json` as the timeline's row: occurred_at comes as ISO text of the naive UTC stored."""
    status, occurred_at, department, note, applied = step
    return status, datetime.fromisoformat(occurred_at).replace(tzinfo=UTC), department, note, applied


# The locked read of a verdict whose answer shows the timeline (PostgreSQL): the case's history rides along as one
# JSON array, with whether the row version locked is the one the statement's snapshot saw (the same ctid). The
# subqueries read that snapshot, taken before the lock was granted: a writer that committed in between may have added
# history the arrays miss. A verdict writes only from `reported`, and every writer of a reported case's history
# (a verdict) also updates the case's row, which gives the locked version another ctid: so an unchanged row in status
# `reported` has the whole timeline. Otherwise (a replay, a refusal, a concurrent verdict) `timeline()` queries.
_seen = Case.__table__.alias("case_seen")
_UNCHANGED = literal_column("cases.ctid") == (
    select(literal_column("case_seen.ctid")).where(_seen.c.id == Case.id).scalar_subquery()
)
_LOCKED_CASE_WITH_TIMELINE = _LOCKED_CASE.add_columns(_UNCHANGED, _timeline_json())
# a verdict batch's cases (PostgreSQL), locked in id order with their timelines: built once, as the single read is
_LOCKED_CASES_WITH_TIMELINES = (
    select(Case)
    .where(Case.case_id == any_(bindparam("case_ids", type_=ARRAY(Text()))))
    .options(lazyload(Case.history))
    .order_by(Case.id)
    .with_for_update(of=Case)
    .add_columns(_UNCHANGED, _timeline_json())
)
_TIMELINES = "rewards.timelines_read"  # session.info key: case pk -> its timeline rows, read with the locked case
_TRUSTED_STATUS = lc.REPORTED  # the only status a verdict moves a case from

TimelineRow = tuple[str, datetime, str | None, str | None, bool]
Timeline = Sequence[TimelineRow] | Sequence[Row[str, datetime, str | None, str | None, bool]]


def get_case(session: Session, case_id: str, *, lock: bool = False, timeline: bool = False) -> Case:
    """Return the case with the city's case id, or raise NotFound (404); lock=True serialises writers.

    timeline=True (a verdict; with lock, outside a batch, PostgreSQL): the case's timeline is read in the same
    statement and kept for this session's `timeline()` of the case when it is complete (see above); the verdict adds
    its own step with `timeline_step()`.
    """
    cache: dict[str, Case | None] | None = session.info.get(_CASES)
    if cache is not None and case_id in cache:  # preloaded (and locked) by this batch, or created in it
        case = cache[case_id]
    elif lock and timeline and session.get_bind().dialect.name == "postgresql":
        row = session.execute(_LOCKED_CASE_WITH_TIMELINE, {"case_id": case_id}).first()
        case = None if row is None else row[0]
        if row is not None:
            _keep_timeline(session, row[0], row[1], row[2])
    elif lock:
        case = session.scalar(_LOCKED_CASE, {"case_id": case_id})
    else:
        case = session.scalar(select(Case).where(Case.case_id == case_id))
    if case is None:
        raise NotFound(f"unknown case {case_id!r}", code="unknown_case")
    return case


def _keep_timeline(session: Session, case: Case, unchanged: bool, steps: list[Any] | None) -> None:
    """Keep the timeline read with the locked case when it is complete (the row version read is the one locked,
    and the case is in the only status a verdict moves it from)."""
    if unchanged and case.status == _TRUSTED_STATUS:
        session.info.setdefault(_TIMELINES, {})[case.id] = [_timeline_row(step) for step in steps or []]


def timeline_step(session: Session, case_pk: int, step: TimelineRow) -> None:
    """Add the history step this transaction writes to the timeline `get_case(timeline=True)` kept, in its place: by
    occurred_at, after the steps of the same instant (it gets the highest id: every writer of a case's history holds
    the case's lock). Nothing to do when no timeline was kept (`timeline()` then queries)."""
    kept: dict[int, list[TimelineRow]] | None = session.info.get(_TIMELINES)
    if kept is not None and case_pk in kept:
        steps = kept[case_pk]
        steps.insert(bisect_right([s[1] for s in steps], step[1]), step)


def timeline(session: Session, case_pk: int) -> Timeline:
    """The case's history as (status, occurred_at, department, note, applied) rows, in `Case.history`'s order,
    including rows this transaction wrote (an answer built right after a flow's writes shows its new step): the
    timeline kept by the locked read and completed by the verdict (once), else a query."""
    kept: dict[int, list[TimelineRow]] | None = session.info.get(_TIMELINES)
    if kept is not None and case_pk in kept:
        return kept.pop(case_pk)
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
    if not set_based(session):  # a set-based batch sends its citizens' changes with its cases, in its end flush
        session.flush()
    return citizen


def _insert_citizen(session: Session, openid: str, now: datetime, given: Mapping[str, object]) -> Citizen:
    """Insert a new citizen with the fields given, returned as an ORM object by the INSERT itself (no SELECT).

    Two first reports of one citizen at once: one insert wins, the other inserts nothing and reads the winner's row
    (the caller then applies its fields as changes)."""
    fresh: dict[str, object] = {"verified": False, "banned": False, "snapshot_user": False}
    fresh |= {field: value for field, value in given.items() if value is not None}
    values = {"openid": openid, **fresh, "created_at": now, "updated_at": now}
    with session.no_autoflush:  # the INSERT needs nothing pending: a set-based batch's cases wait for its end
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
