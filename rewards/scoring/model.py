"""Scoring value objects (pure, frozen): what the rules read and what they decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RULE_VALID_REPORT = "valid_report"
RULE_VOID_REVERSAL = "void_reversal"
RULE_RATING_AWARD = "rating_award"  # optional: a citizen rated the handling of their resolved report


@dataclass(frozen=True)
class CitizenFacts:
    """What the rules need to know about a reporter."""

    citizen_id: int
    verified: bool
    banned: bool
    snapshot_user: bool = False


@dataclass(frozen=True)
class CaseFacts:
    """What the rules need to know about a case at the moment of a decision."""

    case_pk: int
    case_id: str
    category: str
    reporter: CitizenFacts | None  # None: anonymous report
    reported_at: datetime


@dataclass(frozen=True)
class CategoryRule:
    """A report category as the rules see it: its code, Chinese name, group and points per valid case."""

    code: str
    name: str
    group: str
    points: int


@dataclass(frozen=True)
class RuleSettings:
    """Every scoring rule setting: the category point table and the optional daily award limit.

    The same object decides awards (rules.py) and describes them to citizens (rewards/program.py), so the
    published rules cannot promise what the engine refuses.
    """

    categories: tuple[CategoryRule, ...]
    daily_award_limit: int | None = None
    rating_award_points: int = 0  # points for rating a handled report; 0 = off (a rating never earns)
    rating_award_daily_cap: int = 3  # at most this many rating awards per citizen per day (when on)

    @property
    def category_points(self) -> dict[str, int]:
        """Points per valid case, by category code."""
        return {c.code: c.points for c in self.categories}


@dataclass(frozen=True)
class AwardDecision:
    """A ledger line the rules want written: unique per (case, rule)."""

    case_pk: int
    citizen_id: int
    rule: str
    points: int
    reason: str


@dataclass(frozen=True)
class NoAward:
    """Why a filed case earns nothing (kept on the case, shown to the citizen)."""

    reason: str


@dataclass(frozen=True)
class EntryFacts:
    """A committed ledger entry as the leaderboards see it (applied once, by entry_id)."""

    entry_id: int
    citizen_id: int
    district: str | None
    points: int
    week: str  # ISO week the points count toward, e.g. "2026-W48"
    created_at: datetime
    eligible: bool = True  # verified and not banned: may hold a prize rank
