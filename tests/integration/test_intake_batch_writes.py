"""A batch's writes go together on real PostgreSQL and SQLite: the status changes of its cases are sent by one flush
(not one UPDATE each), a new reporter costs one INSERT (no SELECT), and the results are those of one request each."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from intake_adapter.service import IntakeService
from rewards.bootstrap import Container
from rewards.cases.models import Case, CaseHistory, Citizen
from tests.integration.test_intake_bulk_batch import results, statements
from tests.integration.test_intake_webhook import changed, submitted

STEPS = ("dispatched", "processing", "resolved", "closed")


def handling(tag: str, n: int) -> list[dict[str, Any]]:
    """Every case's filing and handling, the cases interleaved as the case system exports them."""
    out: list[dict[str, Any]] = []
    for step, status in enumerate(("filed", *STEPS), start=1):
        extra = {"department": f"市政所{step}"} if status == "dispatched" else {}
        out += [changed(f"{tag}{k}", status, step * 10 + k, **extra) for k in range(n)]
    return out


def test_a_batch_sends_its_status_changes_together(container: Container, db_engine: Engine) -> None:
    svc = IntakeService.of(container)
    svc.receive([submitted(f"H{k}", k, reporter={"openid": f"o-h{k}", "name": "张三明"}) for k in range(5)])
    with statements(db_engine) as seen:
        outcome = svc.receive(handling("H", 5))
    assert [r.result for r in outcome.results] == ["applied"] * 25
    updates = [s for s in seen if s.startswith("UPDATE cases")]
    # 25 status changes of 5 cases: the verdicts' and the handling's UPDATEs in one flush at the batch's end (the ledger
    # lines are deferred too) (one executemany per set of columns changed), not one UPDATE per status change
    assert len(updates) <= 5 + 2, "\n".join(seen)
    with container.read() as s:
        cases = s.scalars(select(Case).where(Case.case_id.like("H%")).order_by(Case.case_id)).all()
        assert [(c.status, c.department, c.verdict) for c in cases] == [("closed", "市政所2", "valid")] * 5
        assert len(s.scalars(select(CaseHistory)).all()) == 5 * 6


def test_a_later_change_of_the_same_case_in_the_batch_wins_and_a_failure_stays_alone(container: Container) -> None:
    svc = IntakeService.of(container)
    batch = [
        submitted("J1", 0),
        changed("J1", "filed", 1),
        changed("J1", "dispatched", 2, department="甲"),
        changed("J1", "refused", 3, verdict="invalid"),  # 409 after the case was read and moved twice
        changed("J1", "processing", 4),
        changed("J1", "resolved", 5, department="乙"),
    ]
    outcome = svc.receive(batch)
    assert [r for _, r in results(outcome)] == ["applied", "applied", "applied", "failed", "applied", "applied"]
    with container.read() as s:
        case = s.scalars(select(Case).where(Case.case_id == "J1")).one()
        assert (case.status, case.department) == ("resolved", "乙")
        steps = s.execute(
            select(CaseHistory.status).where(CaseHistory.case_pk == case.id).order_by(CaseHistory.occurred_at)
        )
        assert [r.status for r in steps] == ["reported", "filed", "dispatched", "processing", "resolved"]
    again = svc.receive(batch)
    assert [r for _, r in results(again)] == ["duplicate", "duplicate", "duplicate", "failed", "duplicate", "duplicate"]


def test_a_new_reporter_is_inserted_without_a_select(container: Container, db_engine: Engine) -> None:
    svc = IntakeService.of(container)
    reports = [
        submitted(f"N{k}", k, reporter={"openid": f"o-new{k}", "name": "李四", "verified": True}) for k in range(4)
    ]
    with statements(db_engine) as seen:
        outcome = svc.receive(reports)
    assert [r.result for r in outcome.results] == ["applied"] * 4
    assert len([s for s in seen if s.startswith("SELECT citizens.")]) == 1, "\n".join(seen)
    assert len([s for s in seen if s.startswith("UPDATE citizens")]) == 0, "\n".join(seen)
    with container.read() as s:
        rows = s.scalars(select(Citizen).where(Citizen.openid.like("o-new%")).order_by(Citizen.openid)).all()
        assert [(c.name, c.verified, c.district) for c in rows] == [("李四", True, "黄浦区")] * 4
