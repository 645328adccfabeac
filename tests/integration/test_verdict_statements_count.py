"""How many SQL round trips a verdict costs, counted by SQLAlchemy event listeners on real PostgreSQL.

The numbers are pinned: a change that adds a statement to the verdict's transaction fails here and has to say why.
Counted are the statements the driver executes plus BEGIN/COMMIT/ROLLBACK (psycopg sends BEGIN as its own round
trip) and pool pre-pings, from the request's first statement to its transaction's COMMIT. Reads done after the
commit by the boards' projection are not the verdict's and are not counted here.

Before issue 13 a valid verdict cost 11 round trips: a pre-ping, BEGIN, the locked read, a SELECT of the case's
history (selectin), UPDATE, three INSERTs (history, audit, ledger), a re-SELECT of the new ledger row, a SELECT of
the reporter for the boards, COMMIT. The case's UPDATE then went on its own (an ORM flush) until it too rode along
with the inserts (6 → 5); then the history the answer shows came with the locked read, not in a read of its own
after the writes (5 → 4; the verdict adds its own step to it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, select

from rewards import db
from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ReportCase, Reporter
from rewards.cases.models import AuditEntry, Case, CaseHistory
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import MakeContainer, auth

ACTOR = Actor("validator-1", "console")
# the pinned counts: BEGIN, one locked read (case + reporter, and the history the answer shows, as arrays), one
# statement updating the case and inserting the history, audit and ledger rows (data-modifying CTEs, RETURNING the
# ledger row), COMMIT; a refusal has no ledger row but the same shape
VALID_VERDICT_ROUND_TRIPS = 4
INVALID_VERDICT_ROUND_TRIPS = 4
# BEGIN, the locked read, the history the answer shows (read again: the locked read's own may miss a step committed
# while it waited for the lock, see rewards.cases.service.get_case), COMMIT
REPLAYED_VERDICT_ROUND_TRIPS = 4


class Counter:
    """Records every statement the engine sends, and every transaction boundary."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.on = False

    def sql(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self.on:
            self.statements.append(" ".join(statement.split())[:160])

    def tx(self, what: str) -> Any:
        def note(*_: Any) -> None:
            if self.on:
                self.statements.append(what)

        return note


@contextmanager
def counting(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    counter = Counter()
    ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        if counter.on:
            counter.statements.append("PING")
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    listeners = [
        ("before_cursor_execute", counter.sql),
        ("begin", counter.tx("BEGIN")),
        ("commit", counter.tx("COMMIT")),
        ("rollback", counter.tx("ROLLBACK")),
    ]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield counter
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@pytest.fixture
def pg_container(pg_engine: Engine, make_container: MakeContainer) -> Container:
    return make_container(engine=pg_engine)


def seed(c: Container, case_id: str, openid: str = "o1") -> None:
    with c.uow() as uow:
        reporter = Reporter(openid=openid, name="张三明", verified=True)
        c.flows.report(uow, ReportCase(case_id, "street_lamp", c.clock.now(), reporter), ACTOR)


def verdict_statements(
    c: Container, engine: Engine, case_id: str, verdict: str, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """The round trips of one verdict request, up to and including its transaction's COMMIT."""
    with TestClient(create_app(c)) as http:
        http.get("/healthz")  # warm the pool: the counted request is a steady-state one
        with counting(engine, monkeypatch) as counter:
            counter.on = True
            resp = http.post(f"/api/v1/cases/{case_id}/verdict", json={"verdict": verdict}, headers=auth())
            counter.on = False
        assert resp.status_code == 200, resp.text
    stmts = counter.statements
    assert "COMMIT" in stmts, stmts
    return stmts[: stmts.index("COMMIT") + 1]


def test_a_valid_verdict_costs_the_pinned_round_trips(
    pg_container: Container, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid verdict through HTTP: one locked read, the writes, the commit; and it still awards exactly once."""
    seed(pg_container, "C1")
    stmts = verdict_statements(pg_container, pg_engine, "C1", "valid", monkeypatch)
    assert len(stmts) == VALID_VERDICT_ROUND_TRIPS, "\n".join(stmts)
    assert "PING" not in stmts
    assert sum(s.startswith("SELECT") and "FOR UPDATE" in s for s in stmts) <= 1  # one locked read
    with pg_container.read() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_an_invalid_verdict_costs_the_pinned_round_trips(
    pg_container: Container, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(pg_container, "C1")
    stmts = verdict_statements(pg_container, pg_engine, "C1", "invalid", monkeypatch)
    assert len(stmts) == INVALID_VERDICT_ROUND_TRIPS, "\n".join(stmts)


def test_a_replayed_verdict_only_reads(
    pg_container: Container, pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(pg_container, "C1")
    verdict_statements(pg_container, pg_engine, "C1", "valid", monkeypatch)
    stmts = verdict_statements(pg_container, pg_engine, "C1", "valid", monkeypatch)
    assert len(stmts) == REPLAYED_VERDICT_ROUND_TRIPS, "\n".join(stmts)


def test_the_verdict_response_shows_the_new_history_step(pg_container: Container) -> None:
    """Fewer statements must not serve a stale timeline: the response carries the verdict's own history step."""
    seed(pg_container, "C1")
    with TestClient(create_app(pg_container)) as http:
        resp = http.post("/api/v1/cases/C1/verdict", json={"verdict": "valid"}, headers=auth())
    assert resp.status_code == 200
    assert [h["status"] for h in resp.json()["history"]] == ["reported", "filed"]


def test_eight_identical_verdicts_through_http_award_once_and_answer_alike(pg_container: Container) -> None:
    """The case's UPDATE rides along with the inserts, after the locked read: 8 copies of one verdict still award
    once, write one history step and one audit line, and every copy answers the filed case."""
    seed(pg_container, "C1")
    app = create_app(pg_container)
    barrier = threading.Barrier(8)
    answers: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            with TestClient(app) as http:
                barrier.wait()
                resp = http.post("/api/v1/cases/C1/verdict", json={"verdict": "valid"}, headers=auth())
                answers.append((resp.status_code, resp.text))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {code for code, _ in answers} == {200} and len(answers) == 8
    assert len({text for _, text in answers}) == 1  # the winner's answer and the replays' are the same case
    with pg_container.read() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 1
        assert s.scalar(select(func.count()).select_from(CaseHistory).where(CaseHistory.status == "filed")) == 1
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "verdict:valid")) == 1
        case = s.scalar(select(Case).where(Case.case_id == "C1"))
        assert case is not None and (case.status, case.verdict) == ("filed", "valid")


def test_a_replay_changes_no_row(pg_container: Container) -> None:
    """A replayed verdict writes nothing: the case row, its history, the audit log and the ledger stay as they were."""
    seed(pg_container, "C1")
    with TestClient(create_app(pg_container)) as http:
        first = http.post("/api/v1/cases/C1/verdict", json={"verdict": "invalid", "reason": "重复"}, headers=auth())
        before = snapshot(pg_container)
        pg_container.clock.advance(minutes=5)  # type: ignore[attr-defined]
        again = http.post("/api/v1/cases/C1/verdict", json={"verdict": "invalid", "reason": "重复"}, headers=auth())
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert snapshot(pg_container) == before


def snapshot(c: Container) -> tuple[object, ...]:
    """Every row a verdict may write, as plain tuples."""
    with c.read() as s:
        case = s.execute(select(*Case.__table__.columns)).all()
        history = s.execute(select(*CaseHistory.__table__.columns).order_by(CaseHistory.id)).all()
        audit = s.execute(select(*AuditEntry.__table__.columns).order_by(AuditEntry.id)).all()
        entries = s.execute(select(*LedgerEntry.__table__.columns).order_by(LedgerEntry.id)).all()
    return tuple(case), tuple(history), tuple(audit), tuple(entries)


def test_the_verdict_write_is_one_cached_statement(pg_container: Container) -> None:
    """The statement carrying a verdict's rows is built once per shape and has a cache key (compiled once: a
    multi-row VALUES has none and was compiled on every verdict)."""
    for n in range(3):
        seed(pg_container, f"C{n}", openid=f"o{n}")
    with TestClient(create_app(pg_container)) as http:
        assert http.post("/api/v1/cases/C0/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
        shapes = len(db._SHAPES)
        for n in (1, 2):
            assert (
                http.post(f"/api/v1/cases/C{n}/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
            )
    assert len(db._SHAPES) == shapes  # the same shape: no new statement
    assert all(stmt._generate_cache_key() is not None for stmt, _ in db._SHAPES.values())  # type: ignore[attr-defined]
