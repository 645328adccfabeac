"""A batch's awards reach the boards in one call after its commit; a rolled-back step's never; a board failure
leaves the ledger committed and is reported like any failed board update (real PostgreSQL/SQLite, real Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select

from intake_adapter.service import IntakeService
from rewards.db import FailedEffect
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import EntryFacts
from tests.conftest import MakeContainer
from tests.fakes.sinks import RecordingSink
from tests.integration.test_intake_webhook import changed, submitted


class CountingSink(RecordingSink):
    """Records every entry, and each apply call's size."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail = fail

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        self.calls.append(len(entries))
        if self.fail:
            raise ConnectionError("the boards are unreachable")
        super().apply(entries)


def verdicts(tag: str, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for k in range(n):
        reporter = {"openid": f"o-{tag}{k % 7}", "name": "张三明", "verified": True}
        out += [submitted(f"{tag}{k}", k, reporter=reporter), changed(f"{tag}{k}", "filed", k + 0.5)]
    return out


def test_a_batch_sends_its_awards_in_one_call_after_commit(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = CountingSink()
    svc = IntakeService.of(make_container(engine=db_engine, sink=sink))
    outcome = svc.receive(verdicts("A", 30))
    assert {r.result for r in outcome.results} == {"applied"}
    assert sink.calls == [30]
    with svc.db.read() as s:
        ids = set(s.scalars(select(LedgerEntry.id)).all())
    assert {e.entry_id for e in sink.entries} == ids
    svc.receive(verdicts("A", 30))  # a replay: duplicates, nothing new for the boards
    assert sink.calls == [30]


def test_a_failed_steps_award_never_reaches_the_boards(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = CountingSink()
    svc = IntakeService.of(make_container(engine=db_engine, sink=sink))
    svc.receive([submitted("T1", 0), changed("T1", "refused", 1, verdict="invalid")])
    batch = [
        *verdicts("G", 3),
        changed("T1", "filed", 4),  # the case was refused: 409 after it was locked and read (a SAVEPOINT pass)
        *verdicts("H", 2),
    ]
    outcome = svc.receive(batch)
    assert [r.result for r in outcome.results].count("failed") == 1
    assert sink.calls == [5]
    with svc.db.read() as s:
        assert {e.entry_id for e in sink.entries} == set(s.scalars(select(LedgerEntry.id)).all())


def test_a_board_failure_keeps_the_ledger_and_is_reported(db_engine: Engine, make_container: MakeContainer) -> None:
    sink = CountingSink(fail=True)
    c = make_container(engine=db_engine, sink=sink)
    reported: list[FailedEffect] = []
    c.db.when_effects_fail(reported.extend)
    outcome = IntakeService.of(c).receive(verdicts("F", 4))
    assert {r.result for r in outcome.results} == {"applied"}  # committed: the projector catches the boards up
    assert sink.calls == [4]
    assert len(reported) == 1 and isinstance(reported[0][1], ConnectionError)
    with c.read() as s:
        assert len(s.scalars(select(LedgerEntry)).all()) == 4
