"""API payloads of the leaderboard domain (public lists carry masked names, never openids)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from rewards.prizes import PrizeTier

BoardKind = Literal["weekly", "all-time", "district-weekly"]


class BoardRowOut(BaseModel):
    """One line of a public board."""

    rank: int
    name: str  # masked: 张*明, or a masked phone, or 匿名市民
    points: int
    reached_at: datetime  # when the citizen reached this total (the tie-break)
    eligible: bool  # verified and not banned: may hold a prize rank
    prize_rank: int | None  # rank among eligible citizens this week (weekly boards only)
    tier: PrizeTier | None


class BoardPageOut(BaseModel):
    """A slice of a board."""

    board: BoardKind
    week: str | None
    district: str | None
    updated_at: datetime | None  # reached time of the latest entry on this board
    total: int  # citizens on the board
    offset: int
    limit: int
    prize_places: int
    rows: list[BoardRowOut]


class NeighbourOut(BaseModel):
    """A citizen just above or below (around me)."""

    rank: int
    name: str
    points: int


class ScopeStandingOut(BaseModel):
    """A citizen's place on one board."""

    ranked: bool
    rank: int | None
    points: int
    total: int | None  # citizens on the board (None when answered from the ledger while Redis is down)
    above: list[NeighbourOut]
    below: list[NeighbourOut]


class StandingOut(BaseModel):
    """A citizen's standing: this week, all time, prize tier and how far the prize list is."""

    week: str
    message: str  # e.g. 本周第 3 名 / 本周暂未上榜
    weekly: ScopeStandingOut
    all_time: ScopeStandingOut
    eligible: bool
    eligibility_note: str | None
    prize_places: int
    prize_rank: int | None
    tier: PrizeTier | None
    points_to_prize: int | None  # 0 when in the prize list; None when not eligible
    stale: bool = False  # True: the boards are unavailable, ranks were computed from the ledger (no neighbours)
