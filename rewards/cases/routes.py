"""Command-center API: the queue, registering a case, verdicts and voids."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from rewards.auth import Principal, require
from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases import service as cases
from rewards.cases.flows import Actor, NewReport, Reporter
from rewards.cases.schemas import CaseIn, CaseOut, VerdictIn, VoidIn
from rewards.deps import container

router = APIRouter(prefix="/api/v1/cases", tags=["command center"])
citizens_router = APIRouter(prefix="/api/v1/citizens", tags=["citizens"])  # report history
Validator = Annotated[Principal, Depends(require("validator"))]
C = Annotated[Container, Depends(container)]


@router.get("", response_model=list[CaseOut])
def list_cases(
    c: C,
    who: Validator,
    status: Annotated[str, Query(pattern="^(" + "|".join(lc.STATUSES) + ")$")] = lc.REPORTED,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[CaseOut]:
    """The queue: cases in a status (default: reported), oldest first."""
    with c.read() as session:
        return [CaseOut.of(case) for case in cases.queue(session, status, limit, offset)]


@router.post("", response_model=CaseOut, status_code=201)
def register_case(body: CaseIn, c: C, who: Validator, response: Response) -> CaseOut:
    """Register a reported case (201); the same case again returns it unchanged (200)."""
    reporter = None
    if body.reporter is not None:
        r = body.reporter
        reporter = Reporter(openid=r.openid, name=r.name, phone=r.phone, district=r.district, verified=r.verified)
    report = NewReport(
        case_id=body.case_id,
        category=body.category,
        reported_at=body.reported_at or c.clock.now(),
        reporter=reporter,
        description=body.description,
        lat=body.lat,
        lon=body.lon,
        coord_system=body.coord_system,
        address=body.address,
        district=body.district,
        photos=body.photos,
    )
    with c.uow() as uow:
        case, created = c.flows.report(uow, report, Actor(who.name, "console"))
        out = CaseOut.of(case)
    if not created:
        response.status_code = 200
    return out


@router.get("/{case_id}", response_model=CaseOut)
def show_case(case_id: str, c: C, who: Validator) -> CaseOut:
    """One case with its timeline."""
    with c.read() as session:
        return CaseOut.of(cases.get_case(session, case_id))


@router.post("/{case_id}/verdict", response_model=CaseOut)
def give_verdict(case_id: str, body: VerdictIn, c: C, who: Validator) -> CaseOut:
    """Valid files the case and awards its reporter; invalid and duplicate refuse it."""
    with c.uow() as uow:
        case = c.flows.verdict(
            uow,
            case_id,
            body.verdict,
            Actor(who.name, "console"),
            duplicate_of=body.duplicate_of,
            reason=body.reason,
        )
        return CaseOut.of(case)


@router.post("/{case_id}/void", response_model=CaseOut)
def void_case(case_id: str, body: VoidIn, c: C, who: Validator) -> CaseOut:
    """Void a filed case for fraud; its points are reversed by a ledger entry dated now."""
    with c.uow() as uow:
        case = c.flows.void(uow, case_id, body.reason, Actor(who.name, "console"))
        return CaseOut.of(case)
