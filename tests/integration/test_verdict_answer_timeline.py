"""The verdict's answer shows the case's timeline read with the locked case and completed with the verdict's own
step (no read after the writes): it must be exactly what a read of the committed case shows, in the same order,
whether the report's instant is before, at or after the verdict's (a clock behind the city's: the verdict's step
then sorts first; the same instant: after the report, by id), on PostgreSQL and SQLite."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ReportCase, Reporter
from tests.conftest import MakeContainer, auth

ACTOR = Actor("validator-1", "console")


def seed(c: Container, case_id: str, minutes: int, micros: int = 0) -> None:
    with c.uow() as uow:
        reporter = Reporter(openid=f"o-{case_id}", name="张三明", verified=True)
        reported_at = c.clock.now() + timedelta(minutes=minutes, microseconds=micros)
        c.flows.report(uow, ReportCase(case_id, "street_lamp", reported_at, reporter), ACTOR)


@pytest.mark.parametrize("verdict", ["valid", "invalid"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.sampled_from([0]) | st.integers(-90, 90),
    micros=st.sampled_from([0, 120_000, 1]) | st.integers(0, 999_999),  # PostgreSQL's JSON trims the zeros
    reason=st.sampled_from([None, "", "重复举报", 'a "quoted" \\ note\n']),
)
def test_the_answer_is_the_committed_case(
    container: Container, verdict: str, minutes: int, micros: int, reason: str | None
) -> None:
    case_id = f"T{verdict}{minutes}.{micros}{reason!r}"
    seed(container, case_id, minutes, micros)
    body = {"verdict": verdict} | ({"reason": reason} if reason is not None else {})
    with TestClient(create_app(container)) as http:
        answer = http.post(f"/api/v1/cases/{case_id}/verdict", json=body, headers=auth())
        assert answer.status_code == 200, answer.text
        shown = http.get(f"/api/v1/cases/{case_id}", headers=auth())
        replay = http.post(f"/api/v1/cases/{case_id}/verdict", json=body, headers=auth())
    assert answer.content == shown.content == replay.content
    steps = [h["status"] for h in answer.json()["history"]]
    target = "filed" if verdict == "valid" else "refused"
    assert sorted(steps) == sorted(["reported", target])
    later = timedelta(minutes=minutes, microseconds=micros) > timedelta(0)  # reported after the verdict's instant
    assert steps[0] == (target if later else "reported")  # by instant; the same instant: by id (the report)


@pytest.fixture
def pg_container(pg_engine: Engine, make_container: MakeContainer) -> Container:
    return make_container(engine=pg_engine)


def test_a_step_committed_while_the_verdict_waited_for_the_lock_is_in_the_answer(
    pg_container: Container, pg_engine: Engine
) -> None:
    """The locked read's history arrays come from the snapshot taken before the lock was granted. Another writer
    holds the case, changes its row (keeping it `reported`) and adds a history step, then commits while the verdict
    waits: the row version locked is not the one the snapshot saw, so the answer reads the timeline again and shows
    that step, as a read of the committed case does."""
    seed(pg_container, "C1", -5)
    app = create_app(pg_container)
    answers: list[tuple[int, bytes]] = []
    with pg_engine.connect() as other:
        other.execute(text("SELECT id FROM cases WHERE case_id = 'C1' FOR UPDATE"))
        other.execute(text("UPDATE cases SET updated_at = updated_at WHERE case_id = 'C1'"))
        other.execute(
            text(
                "INSERT INTO case_history (case_pk, status, occurred_at, recorded_at, actor, source, department,"
                " applied) SELECT id, 'dispatched', reported_at, reported_at, 'case-system', 'intake', '城管', false"
                " FROM cases WHERE case_id = 'C1'"
            )
        )

        def post() -> None:
            with TestClient(app) as http:
                resp = http.post("/api/v1/cases/C1/verdict", json={"verdict": "valid"}, headers=auth())
                answers.append((resp.status_code, resp.content))

        thread = threading.Thread(target=post)
        thread.start()
        waited = False
        for _ in range(500):  # until the verdict waits for the row lock (at most 10 s)
            with pg_engine.connect() as probe:
                waited = bool(
                    probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                            " AND datname = current_database()"
                        )
                    )
                )
            if waited:
                break
            time.sleep(0.02)
        other.commit()
    thread.join(30)
    assert waited and answers and answers[0][0] == 200, answers
    with TestClient(app) as http:
        shown = http.get("/api/v1/cases/C1", headers=auth())
    assert answers[0][1] == shown.content
    assert [h["status"] for h in shown.json()["history"]] == ["reported", "dispatched", "filed"]
