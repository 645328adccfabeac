"""A citizen's report history on real PostgreSQL/SQLite: timeline, outcome, points earned or lost, privacy."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from tests.conftest import INTAKE_TOKEN, auth

CITY = Actor("city-case-system", "intake")
ZHANG = Reporter(openid="o-zhang-openid", name="张三明", phone="13812341234", verified=True)


def report(c: Container, case_id: str, minutes: int, reporter: Reporter = ZHANG, category: str = "street_lamp") -> None:
    with c.uow() as uow:
        when = c.clock.now() - timedelta(hours=10) + timedelta(minutes=minutes)
        c.flows.report(uow, ReportCase(case_id, category, when, reporter=reporter, address="人民路 8 号"), CITY)


def at(c: Container, minutes: int) -> Any:
    return c.clock.now() - timedelta(hours=10) + timedelta(minutes=minutes)


def test_history_shows_timeline_outcome_and_points(client: Any, container: Container) -> None:
    c = container
    report(c, "VALID", 0, category="manhole_cover")  # 2 points
    report(c, "REFUSED", 10)
    report(c, "VOIDED", 20)
    report(c, "PENDING", 30)
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict("VALID", "valid", occurred_at=at(c, 40), department="指挥中心"), CITY)
        c.flows.change_status(
            uow, ChangeStatus("VALID", "dispatched", at(c, 50), department="市政所", note="已派单"), CITY
        )
        c.flows.verdict(uow, GiveVerdict("REFUSED", "invalid", reason="照片模糊", occurred_at=at(c, 41)), CITY)
        c.flows.verdict(uow, GiveVerdict("VOIDED", "valid", occurred_at=at(c, 42)), CITY)
    with c.uow() as uow:
        c.flows.void(uow, VoidCase("VOIDED", "摆拍", at(c, 60)), CITY)
    with c.uow() as uow:  # a step that happened before the dispatch but arrived after it: kept, not applied
        c.flows.change_status(uow, ChangeStatus("VALID", "processing", at(c, 45), note="迟到的记录"), CITY)

    r = client.get("/api/v1/citizens/o-zhang-openid/reports", headers=auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 4 and [x["case_id"] for x in body["reports"]] == ["PENDING", "VOIDED", "REFUSED", "VALID"]
    by_id = {x["case_id"]: x for x in body["reports"]}

    valid = by_id["VALID"]
    assert (valid["status"], valid["status_label"], valid["outcome"], valid["points"]) == (
        "dispatched",
        "已派遣",
        "有效举报",
        2,
    )
    assert valid["category_name"] == "井盖缺失" and valid["department"] == "市政所"
    steps = [(s["status"], s["label"], s["department"], s["note"], s["applied"]) for s in valid["timeline"]]
    assert steps == [
        ("reported", "已上报", None, None, True),
        ("filed", "已立案", "指挥中心", None, True),
        ("processing", "处置中", None, "迟到的记录", False),
        ("dispatched", "已派遣", "市政所", "已派单", True),
    ]
    assert [line["points"] for line in valid["points_lines"]] == [2]

    refused = by_id["REFUSED"]
    assert (refused["outcome"], refused["points"], refused["points_lines"]) == ("无效举报", 0, [])
    assert refused["timeline"][-1]["note"] == "照片模糊"
    voided = by_id["VOIDED"]
    assert (voided["status"], voided["outcome"], voided["points"]) == ("voided", "已作废，积分已收回", 0)
    assert [line["points"] for line in voided["points_lines"]] == [1, -1]
    assert by_id["PENDING"]["outcome"] == "待核实" and by_id["PENDING"]["points"] == 0

    assert "o-zhang-openid" not in r.text and "13812341234" not in r.text and "张三明" not in r.text


def test_anonymous_award_note_and_paging(client: Any, container: Container) -> None:
    snapshot = Reporter(openid="o-snap", snapshot_user=True)
    for n in range(5):
        report(container, f"S{n}", n, reporter=snapshot)
    with container.uow() as uow:
        container.flows.verdict(uow, GiveVerdict("S0", "valid"), CITY)
    page = client.get("/api/v1/citizens/o-snap/reports", params={"limit": 2, "offset": 3}, headers=auth()).json()
    assert page["total"] == 5 and (page["limit"], page["offset"]) == (2, 3)
    assert [x["case_id"] for x in page["reports"]] == ["S1", "S0"]
    s0 = page["reports"][1]
    assert s0["points"] == 0 and s0["award_note"] == "未授权的快照用户不计积分"


def test_access(client: Any, container: Container) -> None:
    report(container, "C1", 0)
    assert client.get("/api/v1/citizens/o-zhang-openid/reports").status_code == 401
    assert client.get("/api/v1/citizens/o-zhang-openid/reports", headers=auth(INTAKE_TOKEN)).status_code == 403
    r = client.get("/api/v1/citizens/o-nobody/reports", headers=auth())
    assert r.status_code == 404 and r.json()["error"] == "unknown_citizen"
    assert client.get("/api/v1/citizens/o-zhang-openid/reports", params={"limit": 0}, headers=auth()).status_code == 422
