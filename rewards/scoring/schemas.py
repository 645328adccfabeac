"""API payloads of the scoring domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from rewards.cases.lifecycle import STATUS_LABELS, VOIDED
from rewards.cases.models import Case
from rewards.scoring.ledger import LedgerEntry


class LedgerLineOut(BaseModel):
    """One ledger line with the reason for it ("explain my points")."""

    case_id: str
    rule: str
    points: int
    week: str
    reason: str
    created_at: datetime


class PointsOut(BaseModel):
    """A citizen's totals and the lines behind them."""

    total: int
    this_week: int
    week: str
    lines: list[LedgerLineOut]


# -- report history: every report with its timeline, outcome and points ---------------------------------------

OUTCOME_LABELS = {"valid": "有效举报", "invalid": "无效举报", "duplicate": "重复举报"}
PENDING_OUTCOME = "待核实"
VOIDED_OUTCOME = "已作废，积分已收回"


class TimelineStepOut(BaseModel):
    """One step of a report's timeline as its citizen sees it (applied=False: arrived after a later step)."""

    status: str
    label: str
    occurred_at: datetime
    department: str | None
    note: str | None
    applied: bool


class PointsLineOut(BaseModel):
    """A ledger line of one report: an award or its reversal."""

    rule: str
    points: int
    week: str
    reason: str
    created_at: datetime


class ReportOut(BaseModel):
    """One of a citizen's reports: where it stands, how it ended and what it earned (no personal data)."""

    case_id: str
    category: str
    category_name: str
    description: str
    address: str | None
    district: str | None
    photos: list[str]
    reported_at: datetime
    status: str
    status_label: str
    verdict: str | None
    outcome: str
    duplicate_of: str | None
    department: str | None
    points: int
    points_lines: list[PointsLineOut]
    award_note: str | None
    timeline: list[TimelineStepOut]

    @classmethod
    def of(cls, case: Case, category_name: str, lines: Sequence[LedgerEntry]) -> ReportOut:
        """Build from the case, its category's name and its ledger rows."""
        outcome = VOIDED_OUTCOME if case.status == VOIDED else OUTCOME_LABELS.get(case.verdict or "", PENDING_OUTCOME)
        return cls(
            case_id=case.case_id,
            category=case.category,
            category_name=category_name,
            description=case.description,
            address=case.address,
            district=case.district,
            photos=[str(p) for p in case.photos or []],
            reported_at=case.reported_at,
            status=case.status,
            status_label=STATUS_LABELS.get(case.status, case.status),
            verdict=case.verdict,
            outcome=outcome,
            duplicate_of=case.duplicate_of,
            department=case.department,
            points=sum(e.points for e in lines),
            points_lines=[
                PointsLineOut(rule=e.rule, points=e.points, week=e.week, reason=e.reason, created_at=e.created_at)
                for e in lines
            ],
            award_note=case.award_note,
            timeline=[
                TimelineStepOut(
                    status=h.status,
                    label=STATUS_LABELS.get(h.status, h.status),
                    occurred_at=h.occurred_at,
                    department=h.department,
                    note=h.note,
                    applied=h.applied,
                )
                for h in case.history
            ],
        )


class ReportHistoryOut(BaseModel):
    """A page of a citizen's reports, newest first."""

    total: int
    limit: int
    offset: int
    reports: list[ReportOut]
