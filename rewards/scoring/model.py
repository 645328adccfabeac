"""Scoring value objects (pure, frozen): what the rules read and what they decide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RULE_VALID_REPORT = "valid_report"
RULE_VOID_REVERSAL = "void_reversal"


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
class RuleSettings:
    """The program-rule switches and the category point table."""

    category_points: dict[str, int]
    anonymous_earns: bool = False
    daily_award_limit: int | None = None


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
