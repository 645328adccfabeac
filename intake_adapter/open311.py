"""Open311 GeoReport v2 facade: the spec's views of services and cases, rendered as JSON or XML from one dict.

Spec: http://wiki.open311.org/GeoReport_v2. Times are W3C date-times in the program's zone (+08:00); lat/long
are WGS-84 (cases reported in GCJ-02 are converted); a case is "open" while the city still handles it.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rewards.cases import lifecycle as lc
from rewards.cases.geo import to_wgs84
from rewards.cases.models import Case
from rewards.config import Category, Settings

SPEC_URL = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-25T00:00:00Z"  # when this facade's behaviour last changed
FORMATS = ("json", "xml")
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
MAX_RESULTS = 1000
MAX_RANGE = timedelta(days=90)
QUERY_PARAMS = frozenset({"service_request_id", "service_code", "start_date", "end_date", "status", "jurisdiction_id"})
_ITEM_TAGS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Open311Error(Exception):
    """An error the facade reports in the spec's format: [{"code": .., "description": ..}]."""

    def __init__(self, status: int, description: str, fmt: str | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.fmt = fmt  # None: the format of the URL that was asked for (filled in by the route)


# -- rendering -------------------------------------------------------------------------------------------------


def render(fmt: str, data: Any, root: str, item: str | None = None) -> bytes:
    """Render data as JSON, or as XML under `root` (a list's entries as `item` elements)."""
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False).encode()
    top = ET.Element(root)
    if isinstance(data, list):
        for entry in data:
            _fill(top, item or "item", entry)
    else:
        for key, value in data.items():
            _fill(top, key, value)
    text: bytes = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return text


def _fill(parent: ET.Element, tag: str, value: Any) -> None:
    el = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(el, key, child)
    elif isinstance(value, list):
        for child in value:
            _fill(el, _ITEM_TAGS.get(tag, "item"), child)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = xml_text(str(value))


def xml_text(text: str) -> str:
    """Return text that XML 1.0 can carry: characters it cannot (C0 controls but tab, newline and CR; lone
    surrogates; U+FFFE/U+FFFF) become U+FFFD, so one stored control character never breaks the public feed."""
    return _NOT_XML.sub("\ufffd", text)


def errors(status: int, description: str) -> list[dict[str, object]]:
    """Return the spec's error list."""
    return [{"code": status, "description": description}]


# -- views -----------------------------------------------------------------------------------------------------


def discovery(settings: Settings) -> dict[str, object]:
    """Return the service discovery document."""
    return {
        "changeset": CHANGESET,
        "contact": "随手拍市民举报平台：如需帮助，请联系城市管理指挥中心",
        "key_service": "提交举报所需的 api_key 由城市管理指挥中心发放",
        "endpoints": [
            {
                "specification": SPEC_URL,
                "url": settings.public_base_url.rstrip("/") + "/open311/v2",
                "changeset": CHANGESET,
                "type": "production" if settings.environment == "production" else "test",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }


def service_view(cat: Category) -> dict[str, object]:
    """Return a category as an Open311 service."""
    return {
        "service_code": cat.code,
        "service_name": cat.name,
        "description": f"{cat.group}：{cat.name}，核实立案后每件计 {cat.points} 分",
        "metadata": False,
        "type": "realtime",
        "keywords": f"{cat.name}, {cat.group}",
        "group": cat.group,
    }


def service_definition(cat: Category) -> dict[str, object]:
    """Return a service definition: no extra attributes (every service has metadata false)."""
    return {"service_code": cat.code, "attributes": []}


def w3(instant: datetime, settings: Settings) -> str:
    """Format an instant as a W3C date-time in the program's zone, e.g. 2026-11-25T10:00:00+08:00."""
    return instant.astimezone(settings.tz).isoformat(timespec="seconds")


def status_notes(case: Case) -> str:
    """Return the Chinese label of the case's status and the note that came with it."""
    label = lc.STATUS_LABELS.get(case.status, case.status)
    current = [h for h in case.history if h.applied and h.status == case.status]
    note = current[-1].note if current else None
    return f"{label}：{note}" if note else label


def request_view(case: Case, settings: Settings) -> dict[str, object]:
    """Return a case as an Open311 service request (no reporter data: the list is public)."""
    cat = settings.category(case.category)
    lat = lon = None
    if case.lat is not None and case.lon is not None:
        wlat, wlon = to_wgs84(case.lat, case.lon, case.coord_system)
        lat, lon = round(wlat, 7), round(wlon, 7)  # 1e-7 degrees is ~1 cm
    photos = [str(p) for p in case.photos or []]
    return {
        "service_request_id": case.case_id,
        "status": "open" if lc.is_open(case.status) else "closed",
        "status_notes": status_notes(case),
        "service_name": cat.name if cat else case.category,
        "service_code": case.category,
        "description": case.description or None,
        "agency_responsible": case.department,
        "service_notice": None,
        "requested_datetime": w3(case.reported_at, settings),
        "updated_datetime": w3(case.status_at, settings),
        "expected_datetime": None,
        "address": case.address,
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": photos[0] if photos else None,
    }


# -- queries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestQuery:
    """The filters of GET requests; ids, when given, override every other filter (as the spec says)."""

    ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: frozenset[str] = frozenset()


def _listed(params: Mapping[str, Sequence[str]], name: str) -> tuple[str, ...]:
    values = [v.strip() for raw in params.get(name, ()) for v in raw.split(",")]
    return tuple(dict.fromkeys(v for v in values if v))


def parse_instant(value: str, name: str, settings: Settings, *, end_of_day: bool = False) -> datetime:
    """Parse a W3C date-time (with offset) or a date (a day in the program's zone); 400 otherwise."""
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            day = datetime.fromisoformat(text).date()
            parsed = datetime.combine(day, time.min, tzinfo=settings.tz)
            if end_of_day:
                parsed += timedelta(days=1) - timedelta(microseconds=1)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Open311Error(400, f"{name} is not a W3C date-time, e.g. 2026-11-25T00:00:00Z: {value!r}") from exc
    except OverflowError as exc:  # the last day of year 9999
        raise Open311Error(400, f"{name} is out of range: {value!r}") from exc
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone offset, e.g. 2026-11-25T00:00:00+08:00: {value!r}")
    try:
        parsed.astimezone(UTC)  # 0001-01-01T00:00+14:00 lies before year 1 in UTC
    except OverflowError as exc:
        raise Open311Error(400, f"{name} is out of range: {value!r}") from exc
    return parsed


def parse_query(params: Mapping[str, Sequence[str]], settings: Settings, now: datetime) -> RequestQuery:
    """Validate GET requests parameters; unknown parameters, codes and statuses are a 400 with the reason."""
    unknown = sorted(set(params) - QUERY_PARAMS - {"api_key"})
    if unknown:
        raise Open311Error(400, f"unknown parameter(s): {', '.join(unknown)}")
    ids = _listed(params, "service_request_id")
    if ids:
        if len(ids) > MAX_RESULTS:
            raise Open311Error(400, f"at most {MAX_RESULTS} service_request_id values per query")
        return RequestQuery(ids=ids)
    codes = _listed(params, "service_code")
    for code in codes:
        if settings.category(code) is None:
            raise Open311Error(400, f"service_code {code!r} was not found")
    statuses = frozenset(_listed(params, "status"))
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status must be open or closed (comma-delimited for both)")
    start_raw, end_raw = _listed(params, "start_date"), _listed(params, "end_date")
    start = parse_instant(start_raw[0], "start_date", settings) if start_raw else None
    end = parse_instant(end_raw[0], "end_date", settings, end_of_day=True) if end_raw else None
    # the spec: a range spans at most 90 days and defaults to the most recent 90 days
    try:
        if start is None:
            end = end or now
            start = end - MAX_RANGE
        elif end is None:
            end = start + MAX_RANGE
    except OverflowError as exc:  # 90 days before year 1 or after 9999
        raise Open311Error(400, "start_date or end_date is out of range") from exc
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > MAX_RANGE:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    return RequestQuery(codes=codes, start=start, end=end, statuses=statuses)


def find_requests(session: Session, q: RequestQuery) -> Sequence[Case]:
    """Return the cases a query selects, newest report first, at most MAX_RESULTS."""
    stmt = select(Case)
    if q.ids:
        stmt = stmt.where(Case.case_id.in_(q.ids))
    else:
        if q.codes:
            stmt = stmt.where(Case.category.in_(q.codes))
        if q.start is not None:
            stmt = stmt.where(Case.reported_at >= q.start)
        if q.end is not None:
            stmt = stmt.where(Case.reported_at <= q.end)
        if q.statuses == {"open"}:
            stmt = stmt.where(Case.status.in_(lc.OPEN_STATES))
        elif q.statuses == {"closed"}:
            stmt = stmt.where(Case.status.not_in(lc.OPEN_STATES))
    stmt = stmt.order_by(Case.reported_at.desc(), Case.id.desc()).limit(MAX_RESULTS)
    return session.scalars(stmt).unique().all()


def check_jurisdiction(value: str | None, settings: Settings, fmt: str) -> None:
    """A jurisdiction_id, when sent, must be this endpoint's own (404 otherwise, as the spec says)."""
    if value is None:
        return
    if settings.open311_jurisdiction_id is None or value != settings.open311_jurisdiction_id:
        raise Open311Error(404, f"jurisdiction_id {value!r} was not found", fmt)
