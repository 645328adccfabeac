"""Verdicts given together in one transaction (VerdictBatcher) answer and change exactly what the same verdicts
given one at a time, in the same order, answer and change: each its own answer or error, the same ledger lines and
the same boards, whatever the batch mixes (valid, invalid, duplicate, replays, refusals, unknown cases, one case
twice). Batches are made deterministically: a first verdict is held in its transaction (its answer waits) while the
others queue up behind it in a known order, then they are given together."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from rewards.api.cases import verdict_answer
from rewards.app import create_app
from rewards.batching.verdicts import VerdictBatcher
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter
from rewards.cases.models import Case
from rewards.clock import FixedClock
from rewards.errors import DomainError, Unavailable
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer, auth, test_settings, wipe

ACTOR = Actor("validator-1", "console")
Outcome = tuple[str, object]  # ("ok", answer bytes) or ("error", (status, code))


def seed(c: Container, side: str, n: int) -> None:
    """n reported cases of `side`, reported a minute apart (case i by citizen i % 2 of that side)."""
    with c.uow() as uow:
        for i in range(n):
            reporter = Reporter(openid=f"o-{side}-{i % 2}", name="张三明", verified=True)
            at = c.clock.now() - timedelta(minutes=60 - i)
            c.flows.report(uow, ReportCase(f"{side}-{i}", "street_lamp", at, reporter), ACTOR)


def outcome_of(give: Callable[[], object]) -> Outcome:
    try:
        answer = give()
    except DomainError as exc:
        return ("error", (exc.status, exc.code))
    return ("ok", getattr(answer, "body", answer))


@dataclass
class Held:
    """A verdict held in its transaction (its answer waits) so that the next ones queue up behind it."""

    release: threading.Event
    thread: threading.Thread


def hold(batcher: VerdictBatcher, command: GiveVerdict) -> Held:
    release, inside = threading.Event(), threading.Event()

    def waiting_answer(session: Session, case: Case) -> object:
        inside.set()
        release.wait(30)
        return verdict_answer(session, case)

    thread = threading.Thread(target=lambda: batcher.give(command, ACTOR, waiting_answer))
    thread.start()
    assert inside.wait(30)
    return Held(release, thread)


def give_together(batcher: VerdictBatcher, gate: GiveVerdict, commands: Sequence[GiveVerdict]) -> list[Outcome]:
    """Give `commands` as one batch, in this order (behind the held `gate` verdict); return each one's outcome."""
    held = hold(batcher, gate)
    outcomes: list[Outcome | None] = [None] * len(commands)
    threads = []
    for n, command in enumerate(commands):

        def give(n: int = n, command: GiveVerdict = command) -> None:
            outcomes[n] = outcome_of(lambda: batcher.give(command, ACTOR, verdict_answer))

        thread = threading.Thread(target=give)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 30
        while batcher.waiting < n + 1:  # queued in this order
            assert time.monotonic() < deadline
            time.sleep(0.001)
    batches = batcher.batches
    held.release.set()
    held.thread.join(30)
    for thread in threads:
        thread.join(30)
    assert batcher.batches == batches + 2  # the gate's, then all of `commands` in one
    return [o for o in outcomes if o is not None]


def give_alone(c: Container, commands: Sequence[GiveVerdict]) -> list[Outcome]:
    """The same verdicts one at a time, each in its own transaction (the single path)."""

    def one(command: GiveVerdict) -> object:
        with c.uow() as uow:
            case = c.flows.verdict(uow, command, ACTOR, answer_timeline=True)
            return verdict_answer(uow.session, case)

    return [outcome_of(lambda command=command: one(command)) for command in commands]


def ledger_of(c: Container, side: str) -> list[tuple[str, str, int, str]]:
    with c.read() as session:
        rows = session.execute(
            select(Case.case_id, LedgerEntry.rule, LedgerEntry.points, LedgerEntry.week)
            .join(Case, Case.id == LedgerEntry.case_pk)
            .where(Case.case_id.like(f"{side}-%"))
            .order_by(Case.case_id, LedgerEntry.rule)
        ).all()
    return [(case_id.removeprefix(side), rule, points, week) for case_id, rule, points, week in rows]


def points_on_boards(c: Container, side: str) -> list[tuple[int, int, bool]]:
    """Each citizen's weekly and all-time points as the boards (Redis) show them."""
    out = []
    for i in range(2):
        s = c.leaderboard.standing(f"o-{side}-{i}")
        out.append((s.weekly.points, s.all_time.points, s.stale))
    return out


def renamed(outcomes: list[Outcome], side: str) -> list[Outcome]:
    return [(kind, value.replace(f'"{side}-'.encode(), b'"X-') if isinstance(value, bytes) else value)
            for kind, value in outcomes]  # fmt: skip


def command(side: str, case: int, verdict: str, duplicate_of: int | None, reason: str | None) -> GiveVerdict:
    original = f"{side}-{duplicate_of}" if duplicate_of is not None else None
    return GiveVerdict(f"{side}-{case}", verdict, duplicate_of=original, reason=reason)


CASES = 4  # per side; index CASES is a case that does not exist
steps = st.lists(
    st.tuples(
        st.integers(0, CASES),
        st.sampled_from(["valid", "valid", "invalid", "duplicate"]),
        st.none() | st.integers(0, CASES - 1),
        st.sampled_from([None, "核实有效", "重复"]),
    ),
    min_size=2,
    max_size=8,
)


@pytest.fixture
def pg_container(pg_engine: Engine, make_container: MakeContainer) -> Container:
    return make_container(engine=pg_engine)


def same_as_one_at_a_time(c: Container, plan: list[tuple[int, str, int | None, str | None]]) -> None:
    """Give `plan` as one batch on cases B-*, and one verdict at a time on twin cases S-*: the same everything."""
    for side in ("B", "S", "G"):
        seed(c, side, CASES)
    batched = give_together(c.verdicts, GiveVerdict("G-0", "invalid"), [command("B", *step) for step in plan])
    alone = give_alone(c, [command("S", *step) for step in plan])
    assert renamed(batched, "B") == renamed(alone, "S")
    assert ledger_of(c, "B") == ledger_of(c, "S")
    assert points_on_boards(c, "B") == points_on_boards(c, "S")
    with TestClient(create_app(c)) as http:  # every answer is the committed case (the last one given of it)
        last = {step[0]: n for n, step in enumerate(plan)}
        for case, n in last.items():
            kind, body = batched[n]
            if kind == "ok":
                assert http.get(f"/api/v1/cases/B-{case}", headers=auth()).content == body


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_a_batch_answers_and_changes_what_the_same_verdicts_one_at_a_time_do(
    per_example: Callable[[], Container], plan: list[tuple[int, str, int | None, str | None]]
) -> None:
    same_as_one_at_a_time(per_example(), plan)


_LIMITED = itertools.count()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_under_a_daily_award_limit_a_batch_counts_its_own_awards(
    pg_engine: Engine, make_container: MakeContainer, plan: list[tuple[int, str, int | None, str | None]]
) -> None:
    """One award a day per citizen (each side's citizens report two cases each): a batch's second valid verdict of a
    citizen is refused its points as the second one given alone is (`award_note`), counting the batch's own line."""
    wipe(pg_engine)
    prefix = f"{test_settings().leaderboard_key_prefix}-limit{next(_LIMITED)}"
    c = make_container(test_settings(daily_award_limit=1, leaderboard_key_prefix=prefix), engine=pg_engine,
                       clock=FixedClock(START))  # fmt: skip
    same_as_one_at_a_time(c, plan)


def test_eight_copies_of_one_verdict_in_one_batch_award_once(pg_container: Container) -> None:
    c = pg_container
    seed(c, "B", 2)
    outcomes = give_together(c.verdicts, GiveVerdict("B-1", "invalid"), [GiveVerdict("B-0", "valid")] * 8)
    assert len({o for o in outcomes}) == 1 and outcomes[0][0] == "ok"
    with c.read() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 1


def test_a_batch_that_cannot_commit_answers_every_verdict_with_its_error_and_changes_nothing(
    pg_container: Container,
) -> None:
    c = pg_container
    seed(c, "B", 4)
    held = hold(c.verdicts, GiveVerdict("B-3", "invalid"))
    errors: list[BaseException] = []

    def broken_answer(session: Session, case: Case) -> object:
        raise RuntimeError("the answer could not be built")

    def give(case_id: str, answer: Callable[[Session, Case], object]) -> None:
        try:
            c.verdicts.give(GiveVerdict(case_id, "valid"), ACTOR, answer)
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=give, args=("B-0", verdict_answer))]
    threads[0].start()
    while c.verdicts.waiting < 1:
        time.sleep(0.001)
    threads.append(threading.Thread(target=give, args=("B-1", broken_answer)))
    threads[1].start()
    while c.verdicts.waiting < 2:
        time.sleep(0.001)
    held.release.set()
    for thread in [held.thread, *threads]:
        thread.join(30)
    assert len(errors) == 2  # the good verdict's too: it shared the transaction that did not commit
    with c.read() as session:
        verdicts = {case_id: verdict for case_id, verdict in session.execute(select(Case.case_id, Case.verdict))}
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert verdicts == {"B-0": None, "B-1": None, "B-2": None, "B-3": "invalid"}


def test_concurrent_posts_are_given_in_batches_and_each_answer_is_its_committed_case(pg_container: Container) -> None:
    c = pg_container
    seed(c, "B", 40)
    bodies: dict[str, bytes] = {}
    with TestClient(create_app(c)) as http:

        def post(i: int) -> None:
            answer = http.post(f"/api/v1/cases/B-{i}/verdict", json={"verdict": "valid"}, headers=auth())
            assert answer.status_code == 200, answer.text
            bodies[f"B-{i}"] = answer.content

        threads = [threading.Thread(target=post, args=(i,)) for i in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(bodies) == 40
        for case_id, body in bodies.items():
            assert http.get(f"/api/v1/cases/{case_id}", headers=auth()).content == body
    with c.read() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 40
    assert c.verdicts.verdicts == 40


def test_close_gives_the_verdicts_still_waiting_then_refuses_new_ones(pg_container: Container) -> None:
    c = pg_container
    seed(c, "B", 3)
    held = hold(c.verdicts, GiveVerdict("B-2", "invalid"))
    outcomes: list[Outcome] = []
    waiting = threading.Thread(
        target=lambda: outcomes.append(
            outcome_of(lambda: c.verdicts.give(GiveVerdict("B-0", "valid"), ACTOR, verdict_answer))
        )
    )
    waiting.start()
    while c.verdicts.waiting < 1:
        time.sleep(0.001)
    closing = threading.Thread(target=c.verdicts.close)
    closing.start()
    held.release.set()
    for thread in (held.thread, waiting, closing):
        thread.join(30)
    assert [kind for kind, _ in outcomes] == ["ok"]  # taken before the close: given, not dropped
    with pytest.raises(Unavailable):
        c.verdicts.give(GiveVerdict("B-1", "valid"), ACTOR, verdict_answer)
    with c.read() as session:
        verdicts = {case_id: verdict for case_id, verdict in session.execute(select(Case.case_id, Case.verdict))}
    assert verdicts == {"B-0": "valid", "B-1": None, "B-2": "invalid"}


def give_in_thread(batcher: VerdictBatcher, command: GiveVerdict, outcomes: list[Outcome]) -> threading.Thread:
    def give() -> None:
        outcomes.append(outcome_of(lambda: batcher.give(command, ACTOR, verdict_answer)))

    thread = threading.Thread(target=give)
    thread.start()
    return thread


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_after_a_batch_of_several_the_next_waits_for_the_verdicts_in_flight(pg_container: Container) -> None:
    """A batch of three, then verdicts that arrive one by one (each only once the batcher waits): the first does not
    start a batch of one, it waits until as many are in as the last batch held (group commit under load). A batch of
    one (or none before) never waits: a lone verdict starts at once."""
    c = pg_container
    seed(c, "B", 8)
    batcher = VerdictBatcher(c.db, c.flows, gather=3600.0)  # the wait ends when they are in, never by the clock here
    give_together(batcher, GiveVerdict("B-7", "invalid"), [GiveVerdict(f"B-{i}", "valid") for i in range(3)])
    assert not batcher.gathering
    batches, outcomes = batcher.batches, []
    threads = [give_in_thread(batcher, GiveVerdict("B-3", "valid"), outcomes)]
    wait_until(lambda: batcher.gathering)  # 3 wanted: the last batch's, none waited as it ended
    for i in (4, 5):
        assert batcher.gathering and batcher.batches == batches  # nothing given yet: it still waits
        threads.append(give_in_thread(batcher, GiveVerdict(f"B-{i}", "valid"), outcomes))
        wait_until(lambda i=i: batcher.waiting == i - 2 or batcher.batches > batches)  # B-3 … B-i in
    for thread in threads:
        thread.join(30)
    assert batcher.batches == batches + 1 and [kind for kind, _ in outcomes] == ["ok"] * 3  # one batch of three
    assert ledger_of(c, "B") == [(f"-{i}", "valid_report", 1, ledger_of(c, "B")[0][3]) for i in range(6)]
    batcher.close()


def test_a_batcher_waiting_for_verdicts_in_flight_gives_what_it_has_when_closed(pg_container: Container) -> None:
    c = pg_container
    seed(c, "B", 5)
    batcher = VerdictBatcher(c.db, c.flows, gather=3600.0)
    give_together(batcher, GiveVerdict("B-4", "invalid"), [GiveVerdict(f"B-{i}", "valid") for i in range(3)])
    outcomes: list[Outcome] = []
    lone = give_in_thread(batcher, GiveVerdict("B-3", "valid"), outcomes)
    wait_until(lambda: batcher.gathering)
    closing = threading.Thread(target=batcher.close)
    closing.start()
    for thread in (lone, closing):
        thread.join(30)
        assert not thread.is_alive()  # the close ended the wait (it was to last an hour)
    assert [kind for kind, _ in outcomes] == ["ok"]
