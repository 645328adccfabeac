"""A citizen's report history: every report with its timeline, outcome and the points it earned or lost."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rewards.cases.models import Case, Citizen
from rewards.config import Settings
from rewards.scoring.ledger import entries_for_case
from rewards.scoring.schemas import ReportHistoryOut, ReportOut


def report_history(session: Session, settings: Settings, citizen: Citizen, limit: int, offset: int) -> ReportHistoryOut:
    """Return a page of a citizen's reports, newest first."""
    total = session.scalar(select(func.count(Case.id)).where(Case.reporter_id == citizen.id)) or 0
    page = session.scalars(
        select(Case)
        .where(Case.reporter_id == citizen.id)
        .order_by(Case.reported_at.desc(), Case.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    reports = []
    for case in page:
        category = settings.category(case.category)
        reports.append(
            ReportOut.of(case, category.name if category else case.category, entries_for_case(session, case.id))
        )
    return ReportHistoryOut(total=total, limit=limit, offset=offset, reports=reports)
