"""API payloads of the cases domain."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rewards.cases.models import Case, CaseHistory

Verdict = Literal["valid", "invalid", "duplicate"]


# Not text: C0 control characters (tab, newline and carriage return only where a field may span lines) and lone
# UTF-16 surrogates (JSON can carry "\ud800"; UTF-8, PostgreSQL and XML cannot). PostgreSQL cannot store NUL, and
# one control character made the public Open311 XML feed unparsable: refused at every intake edge.
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_NOT_ONE_LINE = re.compile("[\x00-\x1f\ud800-\udfff]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Return why a string is not acceptable text (None: it is); `multiline` allows tab, newline and CR."""
    found = (_NOT_TEXT if multiline else _NOT_ONE_LINE).search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "NUL characters (\\u0000) are not allowed"
    if "\ud800" <= char <= "\udfff":
        return "lone UTF-16 surrogates are not text"
    if char in "\t\n\r":
        return f"control characters (U+{ord(char):04X}) are not allowed: this field is a single line"
    return f"control characters (U+{ord(char):04X}) are not allowed"


def refuse_control(data: object, multiline: frozenset[str] = frozenset()) -> object:
    """Raise ValueError naming the field when a string (or one in a list) is not text; return data unchanged.

    Fields named in `multiline` may hold tab, newline and carriage return; no field may hold another C0 control
    character or a lone surrogate.
    """
    if isinstance(data, dict):
        for key, value in data.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                problem = text_problem(v, multiline=key in multiline) if isinstance(v, str) else None
                if problem is not None:
                    raise ValueError(f"{key}: {problem}")
    return data


class _Input(BaseModel):
    """A request body: unknown fields and non-text characters (NUL, other controls, surrogates) are refused."""

    model_config = ConfigDict(extra="forbid")
    multiline: ClassVar[frozenset[str]] = frozenset()  # fields that may span lines (tab, newline, CR allowed)

    @model_validator(mode="before")
    @classmethod
    def _only_text(cls, data: object) -> object:
        return refuse_control(data, cls.multiline)


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
    multiline: ClassVar[frozenset[str]] = frozenset({"description"})
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
    multiline: ClassVar[frozenset[str]] = frozenset({"reason"})
    verdict: Verdict
    duplicate_of: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class VoidIn(_Input):
    """Why a filed case is voided (fraud: staged, re-photographed, fake)."""

    model_config = ConfigDict(extra="forbid")
    multiline: ClassVar[frozenset[str]] = frozenset({"reason"})
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
    def of(cls, case: Case, history: list[HistoryOut] | None = None) -> CaseOut:
        """Build from the ORM row; `history`: its timeline when already read (else read through `case.history`)."""
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
            history=history if history is not None else [HistoryOut.of(h) for h in case.history],
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
