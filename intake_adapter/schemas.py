"""Event payloads as the city's case system sends them (strict: unknown codes and fields are a 422 with a reason)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from rewards.cases.schemas import refuse_control
from rewards.errors import Invalid

CaseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
PhotoUrl = Annotated[str, Field(max_length=1024, pattern=r"^https?://\S+$")]
CITY_STATUSES = ("filed", "refused", "dispatched", "processing", "resolved", "closed", "voided", "sent_back")
CityStatus = Literal["filed", "refused", "dispatched", "processing", "resolved", "closed", "voided", "sent_back"]
# pydantic error types that mean "a code we do not know" rather than "a malformed value"
_UNKNOWN_CODE_ERRORS = frozenset({"literal_error", "union_tag_invalid", "enum"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    multiline: ClassVar[frozenset[str]] = frozenset()  # fields that may span lines (tab, newline, CR allowed)

    @model_validator(mode="before")
    @classmethod
    def _only_text(cls, data: object) -> object:
        # PostgreSQL text cannot hold NUL (SQLite can) and a control character breaks the Open311 XML feed: refuse
        # them (and lone surrogates) here, the same on both databases, with the field named
        return refuse_control(data, cls.multiline)


class LocationIn(_Strict):
    """Where the problem is, in the coordinate system the reporting app used (WeChat maps: gcj02)."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    coord_system: Literal["wgs84", "gcj02"]
    address: str | None = Field(default=None, max_length=256)


class ReporterIn(_Strict):
    """The reporting citizen as WeChat knows them."""

    openid: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+\- ]*$")
    verified: bool | None = None
    snapshot_user: bool | None = None  # WeChat is_snapshotuser=1: has not authorised, earns nothing


class _Envelope(_Strict):
    event_id: EventId
    occurred_at: AwareDatetime
    case_id: CaseId

    @field_validator("occurred_at")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        try:
            value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00+14:00 lies before year 1 in UTC
            raise ValueError("occurred_at is out of range") from exc
        return value


class ReportSubmitted(_Envelope):
    """A citizen's new report (omit `reporter` for an anonymous one)."""

    multiline: ClassVar[frozenset[str]] = frozenset({"description"})
    type: Literal["report.submitted"]
    category: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=4000)
    location: LocationIn | None = None
    district: str | None = Field(default=None, max_length=64)
    photos: list[PhotoUrl] = Field(default_factory=list, max_length=9)
    reporter: ReporterIn | None = None


class StatusChanged(_Envelope):
    """The city's case system moved a case; `filed` and `refused` are the command center's verdicts."""

    multiline: ClassVar[frozenset[str]] = frozenset({"note"})
    type: Literal["case.status_changed"]
    status: CityStatus
    verdict: Literal["valid", "invalid", "duplicate"] | None = None
    duplicate_of: CaseId | None = None
    department: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=2000)
    deadline: AwareDatetime | None = None  # the deadline for handling, if the case system sets one (dispatch)

    @model_validator(mode="after")
    def _verdict_fits_status(self) -> StatusChanged:
        allowed = {"filed": ("valid",), "refused": ("invalid", "duplicate")}.get(self.status, ())
        if self.verdict is not None and self.verdict not in allowed:
            if not allowed:
                raise ValueError(f"a verdict is only allowed with status filed or refused, not {self.status}")
            raise ValueError(f"status {self.status} cannot carry the verdict {self.verdict!r}")
        if self.verdict == "duplicate" and not self.duplicate_of:
            raise ValueError("verdict duplicate needs duplicate_of (the first report's case id)")
        if self.duplicate_of is not None and self.verdict != "duplicate":
            raise ValueError("duplicate_of is only allowed with the verdict duplicate")
        if self.status == "voided" and not (self.note and self.note.strip()):
            raise ValueError("status voided needs a note giving the reason")
        if self.deadline is not None and self.status in ("filed", "refused", "voided"):
            raise ValueError(f"a deadline is only allowed with a status change, not with {self.status}")
        if self.deadline is not None:
            try:
                self.deadline.astimezone(UTC)
            except OverflowError as exc:
                raise ValueError("deadline is out of range") from exc
        return self


Event = Annotated[ReportSubmitted | StatusChanged, Field(discriminator="type")]
_EVENT = TypeAdapter(Event)


def parse_event(raw: object) -> ReportSubmitted | StatusChanged:
    """Validate one event; raise Invalid (422) naming every problem, code unknown_code for unknown codes."""
    try:
        return _EVENT.validate_python(raw)
    except ValidationError as exc:
        raise Invalid(describe(exc), code=error_code(exc)) from exc


def describe(exc: ValidationError) -> str:
    """Return the validation problems as one line: 'field: message; ...'."""
    parts = []
    for err in exc.errors(include_url=False):
        # drop the union tag from the location: 'case.status_changed.status' reads worse than 'status'
        loc = [str(p) for p in err["loc"] if p not in ("report.submitted", "case.status_changed")]
        where = ".".join(loc)
        parts.append(f"{where}: {err['msg']}" if where else str(err["msg"]))
    return "; ".join(parts)


def error_code(exc: ValidationError) -> str:
    """Return unknown_code when a value is not among the known codes, else invalid_event."""
    if any(err["type"] in _UNKNOWN_CODE_ERRORS for err in exc.errors()):
        return "unknown_code"
    return "invalid_event"
