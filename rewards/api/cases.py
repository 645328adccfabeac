"""Command-center API: the queue, registering a case, verdicts, voids and duplicate hints."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from rewards.cases import lifecycle as lc
from rewards.cases import service as cases
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.duplicates import find_duplicates, first_report
from rewards.cases.models import Case
from rewards.cases.schemas import (
    CaseIn,
    CaseOut,
    DuplicateCandidateOut,
    DuplicatesOut,
    HistoryOut,
    VerdictIn,
    VoidIn,
)
from rewards.deps import ClockDep, Db, Flows, SettingsDep, Validator, Verdicts
from rewards.http.lean_route import LeanRoute

router = APIRouter(prefix="/api/v1/cases", tags=["command center"])


def report_command(body: CaseIn, now_if_missing: ClockDep) -> ReportCase:
    """The console API's report as the command every edge builds."""
    r = body.reporter
    return ReportCase(
        case_id=body.case_id,
        category=body.category,
        reported_at=body.reported_at or now_if_missing.now(),
        reporter=Reporter(r.openid, r.name, r.phone, r.district, r.verified) if r is not None else None,
        description=body.description,
        lat=body.lat,
        lon=body.lon,
        coord_system=body.coord_system,
        address=body.address,
        district=body.district,
        photos=tuple(body.photos),
    )


@router.get("", response_model=list[CaseOut])
def list_cases(
    db: Db,
    who: Validator,
    status: Annotated[str, Query(pattern="^(" + "|".join(lc.STATUSES) + ")$")] = lc.REPORTED,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CaseOut]:
    """The queue: cases in a status (default: reported), oldest first."""
    with db.read() as session:
        return [CaseOut.of(case) for case in cases.queue(session, status, limit, offset)]


@router.post("", response_model=CaseOut, status_code=201)
def register_case(body: CaseIn, db: Db, flows: Flows, clock: ClockDep, who: Validator, response: Response) -> CaseOut:
    """Register a reported case (201); the same case again returns it unchanged (200)."""
    with db.uow() as uow:
        case, created = flows.report(uow, report_command(body, clock), Actor(who.name, "console"))
        out = CaseOut.of(case)
    if not created:
        response.status_code = 200
    return out


@router.get("/{case_id}", response_model=CaseOut)
def show_case(case_id: str, db: Db, who: Validator) -> CaseOut:
    """One case with its timeline."""
    with db.read() as session:
        return CaseOut.of(cases.get_case(session, case_id))


async def give_verdict(case_id: str, body: VerdictIn, verdicts: Verdicts, who: Validator) -> Response:
    """Valid files the case and awards its reporter; invalid and duplicate refuse it.

    Verdicts posted at the same time are given together, in one transaction (`VerdictBatcher`, in its own thread:
    the request waits on the event loop); each gets its own answer, as if given alone."""
    command = GiveVerdict(case_id, body.verdict, duplicate_of=body.duplicate_of, reason=body.reason)
    return await verdicts.give_async(command, Actor(who.name, "console"), verdict_answer)


# the command center's hot write: served by LeanRoute's handler (FastAPI's semantics without its general solver)
router.add_api_route(
    "/{case_id}/verdict", give_verdict, methods=["POST"], response_model=CaseOut, route_class_override=LeanRoute
)


def verdict_answer(session: Session, case: Case) -> Response:
    """A verdict's answer: the case with its timeline (read with the locked case where it could be, completed with
    the verdict's step), as JSON."""
    return json_answer(CaseOut.of(case, timeline_out(session, case.id)))


def timeline_out(session: Session, case_pk: int) -> list[HistoryOut]:
    """The case's timeline as the answer shows it, read as plain rows (no ORM objects for a hot path's answer)."""
    return [
        HistoryOut(status=status, occurred_at=occurred_at, department=department, note=note, applied=applied)
        for status, occurred_at, department, note, applied in cases.timeline(session, case_pk)
    ]


def json_answer(out: CaseOut) -> Response:
    """The answer FastAPI would send for `response_model=CaseOut` (the same bytes: pydantic's JSON of the model),
    without validating the model a second time in another thread-pool hop (a plain `def` route's answer is
    validated in the pool; the model was just built and validated here)."""
    return Response(out.model_dump_json(), media_type="application/json")


@router.post("/{case_id}/void", response_model=CaseOut)
def void_case(case_id: str, body: VoidIn, db: Db, flows: Flows, who: Validator) -> CaseOut:
    """Void a filed case for fraud; its points are reversed by a ledger entry dated now."""
    with db.uow() as uow:
        return CaseOut.of(flows.void(uow, VoidCase(case_id, body.reason), Actor(who.name, "console")))


@router.get("/{case_id}/duplicates", response_model=DuplicatesOut)
def duplicate_hints(
    case_id: str,
    db: Db,
    settings: SettingsDep,
    who: Validator,
    radius_m: Annotated[float | None, Query(gt=0, le=5000, description="default: Settings.duplicate_radius_m")] = None,
    window_hours: Annotated[
        float | None, Query(gt=0, le=24 * 90, description="default: Settings.duplicate_window_hours")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DuplicatesOut:
    """Open cases of the same category near this one and close in time, nearest first, with the first report."""
    radius = radius_m if radius_m is not None else settings.duplicate_radius_m
    hours = window_hours if window_hours is not None else settings.duplicate_window_hours
    with db.read() as session:
        case = cases.get_case(session, case_id)
        hints = find_duplicates(session, case, radius, timedelta(hours=hours))
        first = first_report(case, hints)
        return DuplicatesOut(
            case_id=case.case_id,
            category=case.category,
            radius_m=radius,
            window_hours=hours,
            suggested_duplicate_of=first.case_id if first else None,
            candidates=[
                DuplicateCandidateOut(
                    case_id=h.case.case_id,
                    status=h.case.status,
                    status_label=lc.STATUS_LABELS.get(h.case.status, h.case.status),
                    reported_at=h.case.reported_at,
                    earlier=h.earlier,
                    distance_m=round(h.distance_m, 1),
                    lat=round(h.lat, 7),
                    lon=round(h.lon, 7),
                    address=h.case.address,
                    description=h.case.description,
                )
                for h in hints[:limit]
            ],
        )
