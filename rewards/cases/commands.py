"""The cases domain's one language (pure, frozen): the commands every edge builds and CaseFlows carries out.

The API, the console, the intake webhook, Open311 and `rewards demo` each translate their own input into these
types once, at the edge; nothing downstream copies a report field by field. An `Actor` says who caused a change
and through which channel; an `event_id` (intake only) ties a change to the case system's event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Verdict = Literal["valid", "invalid", "duplicate"]
CoordSystem = Literal["wgs84", "gcj02"]
Source = Literal["console", "intake", "system", "open311", "demo"]
VERDICTS: tuple[Verdict, ...] = ("valid", "invalid", "duplicate")
COORD_SYSTEMS: tuple[CoordSystem, ...] = ("wgs84", "gcj02")


@dataclass(frozen=True)
class Actor:
    """Who caused a change and through which channel."""

    name: str
    source: Source


@dataclass(frozen=True)
class Reporter:
    """The citizen behind a report, as the reporting channel knows them (None fields: unknown, left as stored)."""

    openid: str
    name: str | None = None
    phone: str | None = None
    district: str | None = None
    verified: bool | None = None
    snapshot_user: bool | None = None


@dataclass(frozen=True)
class ReportCase:
    """Register a report as a case in status 'reported' (a replay of the same report changes nothing)."""

    case_id: str
    category: str
    reported_at: datetime
    reporter: Reporter | None = None  # None: anonymous
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    coord_system: str = "wgs84"
    address: str | None = None
    district: str | None = None
    photos: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class GiveVerdict:
    """The command center's verdict: valid files the case and awards; invalid and duplicate refuse it."""

    case_id: str
    verdict: str
    duplicate_of: str | None = None
    reason: str | None = None
    occurred_at: datetime | None = None  # None: now
    department: str | None = None


@dataclass(frozen=True)
class VoidCase:
    """Void a filed case (fraud: staged, re-photographed, fake); its points are reversed."""

    case_id: str
    reason: str
    occurred_at: datetime | None = None  # None: now


@dataclass(frozen=True)
class ChangeStatus:
    """Move a case along dispatch / processing / resolve / close."""

    case_id: str
    status: str
    occurred_at: datetime
    department: str | None = None
    note: str | None = None
    deadline: datetime | None = None  # the case system's deadline for handling (sent with the dispatch), if any


@dataclass(frozen=True)
class SetBan:
    """Ban (or unban) a citizen: a ban removes them from prize eligibility."""

    openid: str
    banned: bool
    reason: str


CaseCommand = ReportCase | GiveVerdict | VoidCase | ChangeStatus
