"""The command-center API over HTTP: the loop, and every error path."""

from __future__ import annotations

import pytest

from tests.conftest import INTAKE_TOKEN, auth

CASE = {
    "case_id": "LZ-2026-000001",
    "category": "street_lamp",
    "description": "路灯不亮",
    "lat": 36.06,
    "lon": 103.83,
    "district": "城关区",
    "reporter": {"openid": "oA1", "name": "张三明", "phone": "13812341234", "verified": True},
}


def test_report_verdict_points_void(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/cases", json=CASE, headers=auth())
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "reported"
    assert "oA1" not in r.text and "13812341234" not in r.text
    assert client.post("/api/v1/cases", json=CASE, headers=auth()).status_code == 200  # retried: unchanged
    queue = client.get("/api/v1/cases?status=reported", headers=auth()).json()
    assert [c["case_id"] for c in queue] == ["LZ-2026-000001"]
    r = client.post("/api/v1/cases/LZ-2026-000001/verdict", json={"verdict": "valid", "reason": "属实"}, headers=auth())
    assert r.status_code == 200 and r.json()["status"] == "filed"
    assert (
        client.post("/api/v1/cases/LZ-2026-000001/verdict", json={"verdict": "valid"}, headers=auth()).status_code
        == 200
    )
    pts = client.get("/api/v1/citizens/oA1/points", headers=auth()).json()
    assert pts["total"] == 1 and pts["this_week"] == 1 and pts["week"] == "2026-W48"
    assert pts["lines"][0]["reason"] == "有效举报 LZ-2026-000001"
    r = client.post("/api/v1/cases/LZ-2026-000001/void", json={"reason": "摆拍"}, headers=auth())
    assert r.status_code == 200 and r.json()["status"] == "voided"
    pts = client.get("/api/v1/citizens/oA1/points", headers=auth()).json()
    assert pts["total"] == 0 and [x["points"] for x in pts["lines"]] == [-1, 1]
    assert client.get("/api/v1/cases?status=reported", headers=auth()).json() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/cases", None),
        ("post", "/api/v1/cases", CASE),
        ("get", "/api/v1/cases/X", None),
        ("post", "/api/v1/cases/X/verdict", {"verdict": "valid"}),
        ("post", "/api/v1/cases/X/void", {"reason": "x"}),
        ("get", "/api/v1/citizens/oA1/points", None),
    ],
)
def test_auth_errors(client, method: str, path: str, body: dict | None) -> None:  # type: ignore[no-untyped-def]
    call = getattr(client, method)
    kw = {"json": body} if body is not None else {}
    missing = call(path, **kw)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    wrong = call(path, headers={"Authorization": "Bearer nope"}, **kw)
    assert wrong.status_code == 401
    role = call(path, headers=auth(INTAKE_TOKEN), **kw)
    assert role.status_code == 403 and "validator" in role.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"verdict": "maybe"},
        {"verdict": "valid", "extra": 1},
        {"verdict": "valid", "reason": "x" * 501},
    ],
)
def test_bad_verdict_body_is_422(client, body: dict) -> None:  # type: ignore[no-untyped-def]
    client.post("/api/v1/cases", json=CASE, headers=auth())
    r = client.post("/api/v1/cases/LZ-2026-000001/verdict", json=body, headers=auth())
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    "patch",
    [
        {"category": "unicorns"},
        {"case_id": "has spaces"},
        {"lat": 91},
        {"coord_system": "bd09"},
        {"reporter": {"openid": ""}},
    ],
)
def test_bad_case_body_is_422(client, patch: dict) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/cases", json={**CASE, **patch}, headers=auth())
    assert r.status_code == 422, r.text


def test_unknown_case_is_404_and_conflicts_are_409(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/api/v1/cases/NOPE/verdict", json={"verdict": "valid"}, headers=auth())
    assert r.status_code == 404 and r.json()["error"] == "unknown_case"
    assert client.get("/api/v1/cases/NOPE", headers=auth()).status_code == 404
    assert client.get("/api/v1/citizens/nobody/points", headers=auth()).status_code == 404
    client.post("/api/v1/cases", json=CASE, headers=auth())
    r = client.post("/api/v1/cases/LZ-2026-000001/void", json={"reason": "x"}, headers=auth())
    assert r.status_code == 409 and "illegal transition" in r.json()["detail"]
    client.post("/api/v1/cases/LZ-2026-000001/verdict", json={"verdict": "invalid"}, headers=auth())
    r = client.post("/api/v1/cases/LZ-2026-000001/verdict", json={"verdict": "valid"}, headers=auth())
    assert r.status_code == 409 and r.json()["error"] == "verdict_already_given"
    other = {**CASE, "reporter": {"openid": "someone-else"}}
    r = client.post("/api/v1/cases", json=other, headers=auth())
    assert r.status_code == 409 and r.json()["error"] == "case_id_taken"


def test_openapi_docs(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/api/v1/cases/{case_id}/verdict" in spec["paths"]
