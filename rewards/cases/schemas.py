"""API payloads of the cases domain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewards.cases.models import Case, CaseHistory

Verdict = Literal["valid", "invalid", "duplicate"]


def refuse_nul(data: object) -> object:
    """Raise ValueError naming the field when a string (or a string in a list) holds NUL; return data unchanged."""
    if isinstance(data, dict):
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            if any(isinstance(v, str) and "\x00" in v for v in values):
                raise ValueError(f"{key}: NUL characters (\\u0000) are not allowed")
    return data


class _Input(BaseModel):
    """A request body: unknown fields and NUL characters (PostgreSQL text cannot hold them) are refused."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        return refuse_nul(data)


class ReporterIn(_Input):
    """The reporting citizen (omit for an anonymous report)."""

    model_config = ConfigDict(extra="forbid")
    openid: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\- ]*$")
    district: str | None = Field(default=None, max_length=64)
    verified: bool | None = None


class CaseIn(_Input):
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

    @field_validator("reported_at")
    @classmethod
    def _in_range(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            try:
                value.astimezone(UTC)
            except OverflowError as exc:  # e.g. 0001-01-01T00:00+14:00 lies before year 1 in UTC
                raise ValueError("reported_at is out of range") from exc
        return value


class VerdictIn(_Input):
    """The command center's verdict on a reported case."""

    model_config = ConfigDict(extra="forbid")
    verdict: Verdict
    duplicate_of: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class VoidIn(_Input):
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


# -- duplicate hints (validators) ----------------------------------------------------------------------------


class DuplicateCandidateOut(BaseModel):
    """An open case that may be the same problem (WGS-84 position, distance from the case under review)."""

    case_id: str
    status: str
    status_label: str
    reported_at: datetime
    earlier: bool
    distance_m: float
    lat: float
    lon: float
    address: str | None
    description: str


class DuplicatesOut(BaseModel):
    """Duplicate hints for a reported case, nearest first; suggested_duplicate_of is the first report."""

    case_id: str
    category: str
    radius_m: float
    window_hours: float
    suggested_duplicate_of: str | None
    candidates: list[DuplicateCandidateOut]
