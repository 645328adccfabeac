"""Inbox storage: read the envelope of a raw event and keep it, verbatim and canonical, under its event id."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from intake_adapter.models import PENDING, InboxEvent
from rewards.clock import to_utc
from rewards.db import insert_rows
from rewards.errors import BadRequest, Invalid

_EVENT_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")
_CASE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_TYPE_RE = re.compile(r"^[\x21-\x7e]{1,64}$")
MAX_BATCH = 1000  # the 5 MB body cap (rewards/http/limits.py) still bounds a batch of large events


@dataclass(frozen=True)
class Envelope:
    """What the inbox records about an event before validating the rest of it."""

    event_id: str
    type: str
    case_id: str | None
    occurred_at: datetime | None
    payload: str  # canonical JSON of the whole event


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def parse_body(body: bytes) -> list[object]:
    """Parse a webhook body: {"events": [...]} or one event object; raise 400/422 with the reason."""
    try:
        data = json.loads(body, parse_constant=_no_constants, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", code="bad_json") from exc
    if isinstance(data, dict) and "events" in data:
        if set(data) != {"events"}:
            extra = ", ".join(sorted(str(k) for k in data if k != "events"))
            raise Invalid(f"a batch has only the field 'events' (unexpected: {extra})", code="invalid_batch")
        events = data["events"]
        if not isinstance(events, list) or not events:
            raise Invalid("'events' must be a non-empty list of event objects", code="invalid_batch")
        if len(events) > MAX_BATCH:
            raise Invalid(f"a batch holds at most {MAX_BATCH} events, got {len(events)}", code="batch_too_large")
        return list(events)
    if isinstance(data, dict):
        return [data]
    raise Invalid('the body must be an event object or {"events": [...]}', code="invalid_batch")


def canonical(raw: object) -> str:
    """Return the canonical JSON text of an event (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(raw, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


def read_envelope(raw: object) -> Envelope:
    """Return the envelope of a raw event; raise Invalid when it has no usable event_id (it cannot be kept)."""
    if not isinstance(raw, dict):
        raise Invalid("an event must be a JSON object", code="invalid_event")
    event_id = raw.get("event_id")
    if not isinstance(event_id, str) or not _EVENT_ID_RE.match(event_id):
        raise Invalid("event_id is required: 1-128 printable ASCII characters, no spaces", code="missing_event_id")
    payload = canonical(raw)
    try:
        payload.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON allows "\ud800"; no database can store half a character
        raise Invalid(
            "the event contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text", code="invalid_text"
        ) from exc
    kind = raw.get("type")
    case_id = raw.get("case_id")
    return Envelope(
        event_id=event_id,
        # a code is printable ASCII; anything else (NUL cannot even be stored) is kept as "" and parse_event says why
        type=kind[:64] if isinstance(kind, str) and _TYPE_RE.match(kind[:64]) else "",
        case_id=case_id if isinstance(case_id, str) and _CASE_ID_RE.match(case_id) else None,
        occurred_at=_instant(raw.get("occurred_at")),
        payload=payload,
    )


def echo_id(value: object) -> str | None:
    """Return a refused event's id as it may be echoed in the response: text, at most 128 characters, or None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be written into the JSON reply
        return None
    return value[:128]


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return to_utc(parsed) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):  # e.g. 0001-01-01T00:00+14:00 lies before year 1 in UTC
        return None


def insert_new(session: Session, env: Envelope, now: datetime) -> bool:
    """Insert the event as pending unless its id is already in the inbox; return True when inserted."""
    return env.event_id in insert_many(session, [env], now)


def insert_many(session: Session, envs: list[Envelope], now: datetime) -> dict[str, int]:
    """Insert the events as pending in one statement, skipping ids already in the inbox; return {event_id: new id}."""
    if not envs:
        return {}
    values = [
        {
            "event_id": env.event_id,
            "type": env.type,
            "case_id": env.case_id,
            "occurred_at": env.occurred_at,
            "received_at": now,
            "payload": env.payload,
            "status": PENDING,
            "attempts": 0,
        }
        for env in envs
    ]
    # one statement, the rows one JSON parameter, on PostgreSQL (its text the same whatever the batch's size:
    # compiled and converted once); an executemany elsewhere
    result = insert_rows(session, InboxEvent.__table__, values, conflict=("event_id",), returning=("id", "event_id"))
    assert result is not None
    return {row.event_id: row.id for row in result}


def rows_by_event_id(session: Session, event_ids: list[str]) -> dict[str, InboxEvent]:
    """Return the inbox rows of these event ids."""
    rows = session.scalars(select(InboxEvent).where(InboxEvent.event_id.in_(event_ids))).all()
    return {r.event_id: r for r in rows}


def replace_payload(row: InboxEvent, env: Envelope) -> None:
    """Keep a corrected re-send of a not-yet-applied event in place of the earlier version."""
    row.type = env.type
    row.case_id = env.case_id
    row.occurred_at = env.occurred_at
    row.payload = env.payload
