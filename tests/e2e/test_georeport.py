"""Interop: the PyPI GeoReport v2 client `georeport` (written elsewhere) reads the facade over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from georeport import GeoReport

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.cases.geo import haversine_m
from tests.fakes.live import live_server

ACTOR = Actor("city-case-system", "intake")
SHANGHAI_WGS = (31.1774276, 121.5272106)
SHANGHAI_GCJ = (31.17530398364597, 121.531541859215)


@pytest.fixture
def base_url(container: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread; stopped afterwards."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with live_server(container) as url:
        yield f"{url}/open311/v2"


def seed(c: Container) -> None:
    with c.uow() as uow:
        for n, (case_id, category) in enumerate([("SH-1", "street_lamp"), ("SH-2", "manhole_cover")]):
            report = ReportCase(
                case_id=case_id,
                category=category,
                reported_at=c.clock.now() - timedelta(hours=3 - n),
                reporter=Reporter(openid=f"o-{case_id}", name="张三明", phone="13812341234"),
                description="井盖缺失" if category == "manhole_cover" else "路灯不亮",
                lat=SHANGHAI_GCJ[0],
                lon=SHANGHAI_GCJ[1],
                coord_system="gcj02",
                photos=("https://img.example/p.jpg",),
            )
            c.flows.report(uow, report, ACTOR)
        c.flows.verdict(uow, GiveVerdict("SH-1", "invalid", reason="非本辖区"), ACTOR)


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_georeport_client_reads_services_and_requests(base_url: str, container: Container, output_format: str) -> None:
    seed(container)
    client = GeoReport(base_url, output_format=output_format)

    services = client.get_service_list()
    assert [s["service_code"] for s in services] == [cat.code for cat in container.settings.categories]
    assert services[0]["service_name"] == "路灯损坏"
    definition = client.get_service_definition("manhole_cover")
    assert definition["service_code"] == "manhole_cover"

    requests_ = client.get_service_requests()
    assert [r["service_request_id"] for r in requests_] == ["SH-2", "SH-1"]
    open_ = client.get_service_requests(status="open")
    open_list = open_ if isinstance(open_, list) else [open_]  # the client's XML mode unwraps a single element
    assert [r["service_request_id"] for r in open_list] == ["SH-2"]
    assert client.get_service_requests(service_request_id="SH-1,SH-2", status="open") == requests_

    one = client.get_service_request("SH-1")
    assert one["status"] == "closed" and one["status_notes"] == "不予立案：非本辖区"
    assert one["service_code"] == "street_lamp" and one["media_url"] == "https://img.example/p.jpg"
    assert haversine_m(float(one["lat"]), float(one["long"]), *SHANGHAI_WGS) < 0.05
