"""API payloads of the scoring domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
