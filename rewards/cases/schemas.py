"""API payloads of the cases domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rewards.cases.models import Case, CaseHistory

Verdict = Literal["valid", "invalid", "duplicate"]


class ReporterIn(BaseModel):
    """The reporting citizen (omit for an anonymous report)."""

    model_config = ConfigDict(extra="forbid")
    openid: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\- ]*$")
    district: str | None = Field(default=None, max_length=64)
    verified: bool | None = None


class CaseIn(BaseModel):
    """A reported case registered through the console API."""

    model_config = ConfigDict(extra="forbid")
    case_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    category: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=2000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    coord_system: Literal["wgs84", "gcj02"] = "wgs84"
    address: str | None = Field(default=None, max_length=256)
    district: str | None = Field(default=None, max_length=64)
    photos: list[str] = Field(default_factory=list, max_length=9)
    reported_at: datetime | None = None
    reporter: ReporterIn | None = None


class VerdictIn(BaseModel):
    """The command center's verdict on a reported case."""

    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    duplicate_of: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class VoidIn(BaseModel):
    """Why a filed case is voided (fraud: staged, re-photographed, fake)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


class HistoryOut(BaseModel):
    """One step of a case's timeline."""

    status: str
    occurred_at: datetime
    department: str | None
    note: str | None
    applied: bool

    @classmethod
    def of(cls, row: CaseHistory) -> HistoryOut:
        """Build from the ORM row."""
        return cls(
            status=row.status,
            occurred_at=row.occurred_at,
            department=row.department,
            note=row.note,
            applied=row.applied,
        )


class CaseOut(BaseModel):
    """A case as the command center sees it (no openid)."""

    case_id: str
    category: str
    description: str
    status: str
    verdict: str | None
    duplicate_of: str | None
    district: str | None
    department: str | None
    lat: float | None
    lon: float | None
    coord_system: str
    photos: list[str]
    reported_at: datetime
    anonymous: bool
    award_note: str | None
    history: list[HistoryOut]

    @classmethod
    def of(cls, case: Case) -> CaseOut:
        """Build from the ORM row."""
        return cls(
            case_id=case.case_id,
            category=case.category,
            description=case.description,
            status=case.status,
            verdict=case.verdict,
            duplicate_of=case.duplicate_of,
            district=case.district,
            department=case.department,
            lat=case.lat,
            lon=case.lon,
            coord_system=case.coord_system,
            photos=[str(p) for p in case.photos or []],
            reported_at=case.reported_at,
            anonymous=case.reporter_id is None,
            award_note=case.award_note,
            history=[HistoryOut.of(h) for h in case.history],
        )
