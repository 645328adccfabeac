"""The projector's re-apply window (real PostgreSQL and Redis): an unchanged window is skipped, anything that changes
it (a late commit below the mark, a failed update, the full re-apply period) brings the re-apply back, and the
boards always end equal to the ledger."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from rewards.app import create_app
from rewards.bootstrap import Container
from rewards.cases.models import Case, Citizen, CitizenChange
from rewards.leaderboard import projector as projector_module
from rewards.leaderboard.check import check
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import MakeContainer, auth


def awarded(c: Container, n: int, first: int = 0) -> TestClient:
    """n reports with a valid verdict each (one ledger entry each, applied after commit)."""
    http = TestClient(create_app(c))
    for i in range(first, first + n):
        body = {"case_id": f"W-{i}", "category": "street_lamp", "reporter": {"openid": f"o{i % 3}", "verified": True}}
        assert http.post("/api/v1/cases", json=body, headers=auth()).status_code == 201
        assert http.post(f"/api/v1/cases/W-{i}/verdict", json={"verdict": "valid"}, headers=auth()).status_code == 200
    return http


def unapplied_entry(c: Container, case_id: str, entry_id: int) -> None:
    """Write a ledger entry with a chosen id and no after-commit board update (a late commit, a lost update)."""
    with c.db.uow() as uow:
        session = uow.session
        case = session.scalars(select(Case).where(Case.case_id == case_id)).one()
        week = session.scalars(select(LedgerEntry.week)).first()
        assert week is not None
        session.add(
            LedgerEntry(
                id=entry_id,
                citizen_id=case.reporter_id,
                case_pk=case.id,
                rule="late_bonus",
                points=2,
                week=week,
                reason="迟到的提交",
                created_at=c.clock.now().replace(tzinfo=None),
            )
        )


def max_entry_id(c: Container) -> int:
    with c.read() as s:
        return int(s.scalar(select(func.max(LedgerEntry.id))) or 0)


def test_an_unchanged_window_is_skipped_and_a_late_commit_below_the_mark_still_lands(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    c = make_container(engine=pg_engine)
    awarded(c, 4)
    assert c.projector.catch_up().applied >= 4  # the first pass re-applies the whole window
    assert c.projector.catch_up().applied == 0  # nothing changed: no rows read, no scripts sent
    top = max_entry_id(c)
    unapplied_entry(c, "W-0", top + 5)  # past the mark: the window grows
    assert c.projector.catch_up().applied > 0
    assert check(c.db, c.boards).clean
    unapplied_entry(c, "W-1", top + 2)  # below the new mark, committed after it was applied: a late commit
    status = c.projector.catch_up()
    assert status.applied > 0 and status.ok
    assert check(c.db, c.boards).clean
    assert c.projector.catch_up().applied == 0


def test_a_failed_update_or_the_full_period_re_applies_an_unchanged_window(
    pg_engine: Engine, make_container: MakeContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = make_container(engine=pg_engine)
    awarded(c, 3)
    c.projector.catch_up()
    assert c.projector.catch_up().applied == 0
    c.projector.update_failed()  # an after-commit update failed: the next pass re-applies in full
    assert c.projector.catch_up().applied >= 3
    assert c.projector.catch_up().applied == 0
    monkeypatch.setattr(projector_module, "FULL_REAPPLY_SECONDS", 0.0)  # the period is over (writes a failover lost)
    assert c.projector.catch_up().applied >= 3
    assert check(c.db, c.boards).clean


def test_a_citizen_change_is_restated_after_the_window_was_skipped(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    c = make_container(engine=pg_engine)
    awarded(c, 3)
    c.projector.catch_up()
    assert c.projector.catch_up().applied == 0
    with c.db.uow() as uow:  # a ban whose after-commit restate never ran: only its change-log row tells
        citizen = uow.session.scalars(select(Citizen).where(Citizen.openid == "o1")).one()
        citizen.banned = True
        uow.session.add(CitizenChange(citizen_id=citizen.id, at=c.clock.now().replace(tzinfo=None)))
    assert c.projector.catch_up().applied >= 1
    assert check(c.db, c.boards).clean
    assert c.projector.catch_up().applied == 0
