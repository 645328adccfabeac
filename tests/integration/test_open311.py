"""The Open311 GeoReport v2 facade on real PostgreSQL/SQLite: services, requests, filters, errors, JSON = XML."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from sqlalchemy import select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter
from rewards.cases.geo import haversine_m
from rewards.cases.models import Case, Citizen
from tests.conftest import MakeContainer, test_settings

API = "/open311/v2"
KEY = "test-open311-key"
ACTOR = Actor("city-case-system", "intake")
# eviltransform's Shanghai reference point: (WGS-84, GCJ-02)
SHANGHAI_WGS = (31.1774276, 121.5272106)
SHANGHAI_GCJ = (31.17530398364597, 121.531541859215)


def make_case(
    c: Container,
    case_id: str,
    *,
    category: str = "street_lamp",
    ago: timedelta = timedelta(hours=1),
    point: tuple[float, float] = SHANGHAI_GCJ,
    coord: str = "gcj02",
    steps: tuple[str, ...] = (),
) -> None:
    """Register a case reported `ago` before the clock, then walk it through `steps` a minute apart."""
    when = c.clock.now() - ago
    with c.uow() as uow:
        report = ReportCase(
            case_id=case_id,
            category=category,
            reported_at=when,
            reporter=Reporter(openid=f"o-{case_id}", name="张三明", phone="13812341234"),
            description="路灯不亮",
            lat=point[0],
            lon=point[1],
            coord_system=coord,
            address="浦东南路 1 号",
            photos=("https://img.example/a.jpg", "https://img.example/b.jpg"),
        )
        c.flows.report(uow, report, ACTOR)
        for n, step in enumerate(steps, start=1):
            at = when + timedelta(minutes=n)
            if step in ("valid", "invalid"):
                c.flows.verdict(uow, GiveVerdict(case_id, step, reason="核实", occurred_at=at), ACTOR)
            else:
                c.flows.change_status(uow, ChangeStatus(case_id, step, at, department="市政所", note="处理中"), ACTOR)


def as_text(value: Any) -> Any:
    """How a JSON value reads once rendered as XML text."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    return str(value)


def xml_list(text: str, root: str, item: str) -> list[dict[str, Any]]:
    doc = xmltodict.parse(text)[root]
    if doc is None:
        return []
    rows = doc[item]
    return rows if isinstance(rows, list) else [rows]


def both(client: Any, path: str, root: str, item: str, **params: Any) -> list[dict[str, Any]]:
    """GET a list in both formats, assert they carry the same data, return the JSON."""
    j = client.get(f"{API}/{path}.json", params=params)
    x = client.get(f"{API}/{path}.xml", params=params)
    assert j.status_code == x.status_code == 200, (j.text, x.text)
    assert j.headers["content-type"].startswith("application/json")
    assert x.headers["content-type"].startswith("text/xml")
    data: list[dict[str, Any]] = j.json()
    assert [as_text(row) for row in data] == xml_list(x.text, root, item)
    return data


def spec_error(client: Any, method: str, path: str, status: int, fmt: str = "json", **kw: Any) -> str:
    """Call, assert the spec's error format in that format and status, return the description."""
    r = client.request(method, f"{API}/{path}.{fmt}", **kw)
    assert r.status_code == status, r.text
    if fmt != "xml":  # an unknown format is answered in JSON
        [err] = r.json()
        assert err["code"] == status
        return str(err["description"])
    err = xmltodict.parse(r.text)["errors"]["error"]
    assert err["code"] == str(status)
    return str(err["description"])


def test_discovery_and_services_in_both_formats(client: Any, container: Container) -> None:
    doc = client.get(f"{API}/discovery.json").json()
    assert doc["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert doc["endpoints"][0]["formats"] == ["text/xml", "application/json"]
    xml = xmltodict.parse(client.get(f"{API}/discovery.xml").text)["discovery"]
    assert xml["endpoints"]["endpoint"]["formats"]["format"] == ["text/xml", "application/json"]
    services = both(client, "services", "services", "service")
    assert [s["service_code"] for s in services] == [cat.code for cat in container.settings.categories]
    lamp = services[0]
    assert (lamp["service_name"], lamp["metadata"], lamp["type"], lamp["group"]) == (
        "路灯损坏",
        False,
        "realtime",
        "市政设施",
    )
    definition = client.get(f"{API}/services/manhole_cover.json").json()
    assert definition == {"service_code": "manhole_cover", "attributes": []}
    xml_def = xmltodict.parse(client.get(f"{API}/services/manhole_cover.xml").text)["service_definition"]
    assert xml_def == {"service_code": "manhole_cover", "attributes": None}


def test_errors_use_the_spec_format(client: Any, container: Container) -> None:
    assert "not found" in spec_error(client, "GET", "services/ufo", 404)
    assert "not found" in spec_error(client, "GET", "services/ufo", 404, fmt="xml")
    assert "not found" in spec_error(client, "GET", "requests/NOPE", 404, fmt="xml")
    assert "unknown format" in spec_error(client, "GET", "services", 404, fmt="yaml")
    assert "jurisdiction_id" in spec_error(client, "GET", "services", 404, params={"jurisdiction_id": "bj"})


def test_a_configured_jurisdiction_is_accepted(container: Container, make_container: MakeContainer) -> None:
    c = make_container(test_settings(open311_jurisdiction_id="shanghai.pudong"), engine=container.engine)
    with TestClient(create_app(c)) as http:
        assert http.get(f"{API}/services.json", params={"jurisdiction_id": "shanghai.pudong"}).status_code == 200
        assert http.get(f"{API}/services.json", params={"jurisdiction_id": "beijing"}).status_code == 404


def test_requests_render_the_spec_fields_with_wgs84_positions(client: Any, container: Container) -> None:
    make_case(container, "C1", steps=("valid", "dispatched"))
    [req] = both(client, "requests", "service_requests", "request")
    assert req["service_request_id"] == "C1" and req["status"] == "open"
    assert req["service_code"] == "street_lamp" and req["service_name"] == "路灯损坏"
    assert req["status_notes"] == "已派遣：处理中" and req["agency_responsible"] == "市政所"
    assert req["media_url"] == "https://img.example/a.jpg" and req["address"] == "浦东南路 1 号"
    assert req["requested_datetime"] == "2026-11-25T09:00:00+08:00"
    assert req["updated_datetime"] == "2026-11-25T09:02:00+08:00"
    assert req["expected_datetime"] is None and req["address_id"] is None and req["zipcode"] is None
    # stored as reported (GCJ-02), published as WGS-84: within a few centimetres of the reference point
    assert haversine_m(req["lat"], req["long"], *SHANGHAI_WGS) < 0.05
    [one] = client.get(f"{API}/requests/C1.json").json()
    assert one == req
    assert xml_list(client.get(f"{API}/requests/C1.xml").text, "service_requests", "request") == [as_text(req)]


def test_request_filters(client: Any, container: Container) -> None:
    make_case(container, "OPEN-LAMP", ago=timedelta(days=1))
    make_case(container, "CLOSED-LAMP", ago=timedelta(days=2), steps=("invalid",))
    make_case(container, "OPEN-BIN", category="overflowing_bin", ago=timedelta(days=3))
    make_case(container, "OLD-LAMP", ago=timedelta(days=120))

    def ids(**params: Any) -> list[str]:
        return [r["service_request_id"] for r in both(client, "requests", "service_requests", "request", **params)]

    assert ids() == ["OPEN-LAMP", "CLOSED-LAMP", "OPEN-BIN"]  # newest first, the last 90 days
    assert ids(status="open") == ["OPEN-LAMP", "OPEN-BIN"]
    assert ids(status="closed") == ["CLOSED-LAMP"]
    assert ids(status="open,closed") == ids()
    assert ids(service_code="overflowing_bin") == ["OPEN-BIN"]
    assert ids(service_code="street_lamp,overflowing_bin", status="open") == ["OPEN-LAMP", "OPEN-BIN"]
    now = container.clock.now()
    start, end = (now - timedelta(days=2, hours=12)).isoformat(), (now - timedelta(days=1, hours=12)).isoformat()
    assert ids(start_date=start, end_date=end) == ["CLOSED-LAMP"]
    assert ids(start_date="2026-07-20T00:00:00Z", end_date="2026-08-10") == ["OLD-LAMP"]
    # ids override every other filter, unknown ones are simply absent
    assert ids(service_request_id="OLD-LAMP,OPEN-BIN,NOPE", status="closed") == ["OPEN-BIN", "OLD-LAMP"]
    assert ids(start_date="2026-11-25") == []  # the day after the newest case here


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"status": "pending"}, "status must be open or closed"),
        ({"service_code": "ufo"}, "not found"),
        ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, "90 days"),
        ({"start_date": "2026-11-20T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, "before start_date"),
        ({"start_date": "2026-11-20T00:00:00"}, "time zone"),
        ({"start_date": "last tuesday"}, "W3C"),
        ({"page": "2"}, "unknown parameter"),
    ],
)
def test_bad_filters_are_400_in_the_spec_format(
    client: Any, container: Container, params: dict[str, str], reason: str
) -> None:
    for fmt in ("json", "xml"):
        assert reason in spec_error(client, "GET", "requests", 400, fmt=fmt, params=params)


def post(client: Any, fmt: str = "json", headers: dict[str, str] | None = None, **form: Any) -> Any:
    return client.post(f"{API}/requests.{fmt}", data=form, headers=headers or {})


def citizen(c: Container, case_id: str) -> Citizen | None:
    with c.read() as s:
        case = s.scalar(select(Case).where(Case.case_id == case_id))
        assert case is not None
        return case.reporter


def test_post_creates_a_reported_case(client: Any, container: Container) -> None:
    r = post(
        client,
        api_key=KEY,
        service_code="road_damage",
        lat="31.2304",
        long="121.4737",
        description="路面塌陷",
        device_id="oWxOpenId123",
        last_name="王",
        first_name="小明",
        phone="13900001111",
        media_url="https://img.example/x.jpg",
    )
    assert r.status_code == 201, r.text
    [created] = r.json()
    rid = created["service_request_id"]
    assert rid.startswith("O311-") and created["service_notice"] and created["account_id"] is None
    [req] = client.get(f"{API}/requests/{rid}.json").json()
    assert (req["status"], req["service_code"], req["lat"], req["long"]) == ("open", "road_damage", 31.2304, 121.4737)
    assert req["status_notes"] == "已上报" and req["media_url"] == "https://img.example/x.jpg"
    who = citizen(container, rid)
    assert who is not None and (who.openid, who.name, who.phone, who.verified) == (
        "oWxOpenId123",
        "王小明",
        "13900001111",
        False,
    )
    xml = post(client, "xml", api_key=KEY, service_code="debris", address_string="浦东南路 1 号", email="A@B.cn")
    assert xml.status_code == 201
    rid2 = xmltodict.parse(xml.text)["service_requests"]["request"]["service_request_id"]
    who2 = citizen(container, rid2)
    assert who2 is not None and who2.openid == "email:a@b.cn"
    anonymous = post(client, api_key=KEY, service_code="debris", lat="31.2", long="121.4")
    assert citizen(container, anonymous.json()[0]["service_request_id"]) is None
    assert "匿名" in anonymous.json()[0]["service_notice"]


def test_post_with_an_idempotency_key_is_created_once(client: Any, container: Container) -> None:
    form = {"api_key": KEY, "service_code": "debris", "lat": "31.2", "long": "121.4", "device_id": "oA"}
    first = post(client, headers={"Idempotency-Key": "req-1"}, **form)
    again = post(client, headers={"Idempotency-Key": "req-1"}, **form)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    other = post(client, headers={"Idempotency-Key": "req-1"}, **{**form, "service_code": "illegal_ad"})
    assert other.status_code == 409 and other.json()[0]["code"] == 409
    with container.read() as s:
        assert len(s.scalars(select(Case)).all()) == 1


@pytest.mark.parametrize(
    ("form", "status", "reason"),
    [
        ({"service_code": "debris", "lat": "1", "long": "2"}, 403, "api_key was not provided"),
        ({"api_key": "nope", "service_code": "debris", "lat": "1", "long": "2"}, 403, "invalid api_key"),
        ({"api_key": KEY, "lat": "1", "long": "2"}, 400, "service_code is required"),
        ({"api_key": KEY, "service_code": "ufo", "lat": "1", "long": "2"}, 400, "not found"),
        ({"api_key": KEY, "service_code": "debris"}, 400, "a location is required"),
        ({"api_key": KEY, "service_code": "debris", "lat": "1"}, 400, "together"),
        ({"api_key": KEY, "service_code": "debris", "lat": "95", "long": "2"}, 400, "between"),
        ({"api_key": KEY, "service_code": "debris", "lat": "x", "long": "2"}, 400, "not a number"),
        ({"api_key": KEY, "service_code": "debris", "address_id": "77"}, 400, "address_id"),
        ({"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "color": "red"}, 400, "unknown field"),
        ({"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "attribute[x]": "1"}, 400, "attributes"),
        ({"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "email": "nope"}, 400, "email"),
        ({"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "first_name": "明"}, 400, "a name needs"),
        (
            {"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "media_url": "file:///x"},
            400,
            "media_url",
        ),
        ({"api_key": KEY, "service_code": "debris", "lat": "1", "long": "2", "device_id": "a b"}, 400, "device_id"),
    ],
)
def test_bad_posts_are_refused_with_the_reason(
    client: Any, container: Container, form: dict[str, str], status: int, reason: str
) -> None:
    for fmt in ("json", "xml"):
        assert reason in spec_error(client, "POST", "requests", status, fmt=fmt, data=form)
    with container.read() as s:
        assert s.scalars(select(Case)).all() == []


def test_times_are_w3c_in_the_program_zone(client: Any, container: Container) -> None:
    make_case(container, "C1", ago=timedelta(0))
    [req] = client.get(f"{API}/requests/C1.json").json()
    assert datetime.fromisoformat(req["requested_datetime"]) == container.clock.now()
    assert req["requested_datetime"].endswith("+08:00")
