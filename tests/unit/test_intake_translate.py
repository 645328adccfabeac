"""Event payloads (strict schemas), the raw-body reader and the pure translation onto the case flows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_adapter.inbox import canonical, parse_body, read_envelope
from intake_adapter.schemas import CITY_STATUSES, ReportSubmitted, StatusChanged, parse_event
from intake_adapter.translate import translate_report, translate_status
from rewards.cases.commands import ChangeStatus, GiveVerdict, ReportCase, VoidCase
from rewards.errors import BadRequest, Invalid

AT = "2026-11-25T09:58:00+08:00"
WHEN = datetime(2026, 11, 25, 1, 58, tzinfo=UTC)  # AT in UTC


def submitted(**over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": "e-1",
        "type": "report.submitted",
        "occurred_at": AT,
        "case_id": "SSP-1",
        "category": "street_lamp",
        "description": "路灯不亮",
        "location": {"lat": 31.2304, "lon": 121.4737, "coord_system": "gcj02", "address": "人民大道 200 号"},
        "district": "黄浦区",
        "photos": ["https://img.example/1.jpg"],
        "reporter": {"openid": "oABC", "name": "张三明", "phone": "13812341234", "verified": True},
    }
    event.update(over)
    return event


def changed(status: str, **over: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"e-{status}",
        "type": "case.status_changed",
        "occurred_at": AT,
        "case_id": "SSP-1",
        "status": status,
    }
    event.update(over)
    return event


def test_report_submitted_maps_onto_a_report_case() -> None:
    event = parse_event(submitted())
    assert isinstance(event, ReportSubmitted)
    report = translate_report(event)
    assert isinstance(report, ReportCase)
    assert report.case_id == "SSP-1" and report.category == "street_lamp"
    assert report.reported_at == datetime(2026, 11, 25, 1, 58, tzinfo=UTC)
    assert (report.lat, report.lon, report.coord_system) == (31.2304, 121.4737, "gcj02")
    assert report.address == "人民大道 200 号" and report.district == "黄浦区"
    assert report.reporter is not None and report.reporter.openid == "oABC" and report.reporter.verified is True
    assert report.reporter.district == "黄浦区"
    assert report.photos == ("https://img.example/1.jpg",)


def test_a_report_without_reporter_or_location_is_anonymous_and_unplaced() -> None:
    event = parse_event(submitted(reporter=None, location=None))
    assert isinstance(event, ReportSubmitted)
    report = translate_report(event)
    assert report.reporter is None and report.lat is None and report.coord_system == "wgs84"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            changed("filed", department="城管局", note="立案"),
            GiveVerdict("SSP-1", "valid", reason="立案", occurred_at=WHEN, department="城管局"),
        ),
        (changed("refused"), GiveVerdict("SSP-1", "invalid", occurred_at=WHEN)),
        (
            changed("refused", verdict="duplicate", duplicate_of="SSP-0", note="重复"),
            GiveVerdict("SSP-1", "duplicate", duplicate_of="SSP-0", reason="重复", occurred_at=WHEN),
        ),
        (changed("voided", note="摆拍"), VoidCase("SSP-1", "摆拍", WHEN)),
        (
            changed("sent_back", note="未修好"),
            ChangeStatus("SSP-1", "processing", WHEN, note="退回重办：未修好"),
        ),
        (
            changed("sent_back"),
            ChangeStatus("SSP-1", "processing", WHEN, note="退回重办"),
        ),
        (
            changed("dispatched", department="市政"),
            ChangeStatus("SSP-1", "dispatched", WHEN, department="市政"),
        ),
    ],
)
def test_status_changes_map_onto_commands(event: dict[str, Any], expected: object) -> None:
    parsed = parse_event(event)
    assert isinstance(parsed, StatusChanged)
    assert translate_status(parsed) == expected


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(CITY_STATUSES),
    st.sampled_from([None, "valid", "invalid", "duplicate"]),
    st.sampled_from([None, "SSP-0"]),
    st.sampled_from([None, "", "原因"]),
)
def test_every_status_event_is_either_rejected_with_a_reason_or_maps_to_one_command(
    status: str, verdict: str | None, duplicate_of: str | None, note: str | None
) -> None:
    raw = changed(status, verdict=verdict, duplicate_of=duplicate_of, note=note)
    try:
        event = parse_event(raw)
    except Invalid as exc:
        assert exc.status == 422 and exc.message
        return
    assert isinstance(event, StatusChanged)
    command = translate_status(event)
    if status in ("filed", "refused"):
        assert isinstance(command, GiveVerdict)
        assert command.verdict == ("valid" if status == "filed" else verdict or "invalid")
        assert command.duplicate_of == (duplicate_of if command.verdict == "duplicate" else None)
    elif status == "voided":
        assert isinstance(command, VoidCase) and command.reason.strip()
    else:
        assert isinstance(command, ChangeStatus)
        assert command.status == ("processing" if status == "sent_back" else status)


@pytest.mark.parametrize(
    ("event", "code", "reason"),
    [
        ({**changed("filed"), "type": "case.deleted"}, "unknown_code", "does not match any of the expected tags"),
        (changed("reported"), "unknown_code", "status"),
        (changed("archived"), "unknown_code", "status"),
        (submitted(location={"lat": 1, "lon": 2, "coord_system": "bd09"}), "unknown_code", "coord_system"),
        (changed("refused", verdict="maybe"), "unknown_code", "verdict"),
        (changed("filed", verdict="invalid"), "invalid_event", "cannot carry the verdict"),
        (changed("dispatched", verdict="valid"), "invalid_event", "only allowed with status filed or refused"),
        (changed("refused", verdict="duplicate"), "invalid_event", "needs duplicate_of"),
        (changed("refused", duplicate_of="SSP-0"), "invalid_event", "only allowed with the verdict duplicate"),
        (changed("voided"), "invalid_event", "needs a note"),
        (submitted(occurred_at="2026-11-25T09:58:00"), "invalid_event", "timezone"),
        (submitted(surprise=1), "invalid_event", "surprise"),
        (submitted(photos=["ftp://x"]), "invalid_event", "photos.0"),
        (submitted(location={"lat": 91, "lon": 2, "coord_system": "wgs84"}), "invalid_event", "location.lat"),
        (submitted(case_id="has space"), "invalid_event", "case_id"),
    ],
)
def test_bad_events_are_422_with_a_reason(event: dict[str, Any], code: str, reason: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_event(event)
    assert info.value.status == 422
    assert info.value.code == code
    assert reason in info.value.message


def test_body_shapes() -> None:
    assert parse_body(b'{"events": [{"a": 1}, {"b": 2}]}') == [{"a": 1}, {"b": 2}]
    assert parse_body(b'{"event_id": "x"}') == [{"event_id": "x"}]
    for body, error in [
        (b"not json", BadRequest),
        (b"[1, 2]", Invalid),
        (b'{"events": []}', Invalid),
        (b'{"events": {}}', Invalid),
        (b'{"events": [{}], "extra": 1}', Invalid),
        (b'{"events": [{"n": NaN}]}', BadRequest),
        (b'{"events": [{"n": 1e999}]}', BadRequest),
        (b"[" * 100_000, BadRequest),
    ]:
        with pytest.raises(error):
            parse_body(body)


def test_envelope_keeps_what_it_can_read() -> None:
    env = read_envelope({"event_id": "e-9", "type": "x" * 100, "case_id": "bad id", "occurred_at": "garbage"})
    assert env.event_id == "e-9" and len(env.type) == 64 and env.case_id is None and env.occurred_at is None
    env = read_envelope(submitted())
    assert env.case_id == "SSP-1" and env.occurred_at == datetime(2026, 11, 25, 1, 58, tzinfo=UTC)
    assert env.payload == canonical(submitted())
    for raw in ({}, {"event_id": ""}, {"event_id": "has space"}, {"event_id": 7}, ["e-1"], {"event_id": "x" * 129}):
        with pytest.raises(Invalid, match=r"event_id|JSON object"):
            read_envelope(raw)
