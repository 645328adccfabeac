"""Pure mapping of validated intake events onto the cases domain's commands (no I/O, no decisions about points).

The event types are described by read-only Protocols so this module stays pure: the pydantic payloads in
intake_adapter/schemas.py satisfy them structurally.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from rewards.cases.commands import ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase

SENT_BACK_NOTE = "退回重办"


class LocationLike(Protocol):
    """A reported position."""

    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def coord_system(self) -> str: ...
    @property
    def address(self) -> str | None: ...


class ReporterLike(Protocol):
    """The reporting citizen."""

    @property
    def openid(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def verified(self) -> bool | None: ...
    @property
    def snapshot_user(self) -> bool | None: ...


class SubmittedLike(Protocol):
    """A report.submitted event."""

    @property
    def case_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def category(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def location(self) -> LocationLike | None: ...
    @property
    def district(self) -> str | None: ...
    @property
    def photos(self) -> Sequence[str]: ...
    @property
    def reporter(self) -> ReporterLike | None: ...


class StatusChangedLike(Protocol):
    """A case.status_changed event."""

    @property
    def case_id(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def verdict(self) -> str | None: ...
    @property
    def duplicate_of(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def note(self) -> str | None: ...
    @property
    def deadline(self) -> datetime | None: ...


def translate_report(event: SubmittedLike) -> ReportCase:
    """Map report.submitted onto a ReportCase; an event without a reporter is an anonymous report."""
    reporter = None
    if event.reporter is not None:
        r = event.reporter
        reporter = Reporter(
            openid=r.openid,
            name=r.name,
            phone=r.phone,
            district=event.district,
            verified=r.verified,
            snapshot_user=r.snapshot_user,
        )
    loc = event.location
    return ReportCase(
        case_id=event.case_id,
        category=event.category,
        reported_at=event.occurred_at,
        reporter=reporter,
        description=event.description,
        lat=loc.lat if loc else None,
        lon=loc.lon if loc else None,
        coord_system=loc.coord_system if loc else "wgs84",
        address=loc.address if loc else None,
        district=event.district,
        photos=tuple(event.photos),
    )


def translate_status(event: StatusChangedLike) -> GiveVerdict | VoidCase | ChangeStatus:
    """Map case.status_changed: filed/refused are verdicts, voided a void, sent_back is processing again."""
    when = event.occurred_at
    if event.status == "filed":
        return GiveVerdict(event.case_id, "valid", reason=event.note, occurred_at=when, department=event.department)
    if event.status == "refused":
        verdict, dup, dept = event.verdict or "invalid", event.duplicate_of, event.department
        return GiveVerdict(event.case_id, verdict, dup, event.note, when, dept)
    if event.status == "voided":
        return VoidCase(event.case_id, event.note or "", when)
    if event.status == "sent_back":
        note = f"{SENT_BACK_NOTE}：{event.note}" if event.note else SENT_BACK_NOTE
        return ChangeStatus(event.case_id, "processing", when, event.department, note, event.deadline)
    return ChangeStatus(event.case_id, event.status, when, event.department, event.note, event.deadline)
