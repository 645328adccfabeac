"""Stateful test: random report / verdict / void / status / replay sequences through the real service layer on
PostgreSQL, checked against a plain-Python model of the program rules after every step."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import Engine, select

from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Case
from rewards.clock import FixedClock, week_of
from rewards.errors import DomainError
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer, test_settings, wipe
from tests.fakes.sinks import RecordingSink

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "200"))
CATEGORIES = {"street_lamp": 1, "manhole_cover": 2, "illegal_ad": 1}
ACTOR = Actor("validator-1", "console")


@dataclass
class ModelCase:
    case_id: str
    reporter: int | None  # index into model citizens
    category: str
    order: int
    status: str = lc.REPORTED
    verdict: str | None = None
    duplicate_of: str | None = None


@dataclass
class Model:
    citizens: list[dict[str, bool]] = field(default_factory=list)
    cases: list[ModelCase] = field(default_factory=list)
    ledger: dict[tuple[str, str], tuple[int, str, int]] = field(default_factory=dict)  # (case, rule) -> (cit, wk, pts)


class LoopMachine(RuleBasedStateMachine):
    """The incentive loop against its model."""

    def __init__(self) -> None:
        super().__init__()
        run = type(self)  # through the class: a function read through an instance would be bound to it
        assert run.engine is not None and run.make_container is not None, "set by the test function"
        wipe(run.engine)
        self.clock = FixedClock(START)
        self.sink = RecordingSink()
        self.c = run.make_container(
            test_settings(categories=[{"code": k, "name": k, "points": v} for k, v in CATEGORIES.items()]),
            engine=run.engine,
            clock=self.clock,
            sink=self.sink,
        )
        self.m = Model()
        self.done: list[ReportCase | GiveVerdict | VoidCase] = []  # successful commands, for replay

    # set by the test function: one engine and one container factory per test run, a fresh container per example
    engine: Engine | None = None
    make_container: MakeContainer | None = None

    # --- helpers -------------------------------------------------------------------------------------
    def week(self) -> str:
        return str(week_of(self.clock.now(), self.c.settings.tz))

    def model_case(self, case_id: str) -> ModelCase:
        return next(x for x in self.m.cases if x.case_id == case_id)

    def expect(self, fn, *args) -> bool:  # type: ignore[no-untyped-def]
        """Run a flow in its own transaction; return False when it was refused with a domain error."""
        try:
            with self.c.uow() as uow:
                fn(uow, *args)
        except DomainError:
            return False
        return True

    # --- rules ---------------------------------------------------------------------------------------
    @rule(verified=st.booleans(), snapshot=st.booleans())
    def add_citizen(self, verified: bool, snapshot: bool) -> None:
        self.m.citizens.append({"verified": verified, "snapshot": snapshot})

    @rule(who=st.integers(0, 6), anonymous=st.booleans(), category=st.sampled_from(sorted(CATEGORIES)))
    def report(self, who: int, anonymous: bool, category: str) -> None:
        reporter = None if anonymous or not self.m.citizens else who % len(self.m.citizens)
        case_id = f"C{len(self.m.cases) + 1}"
        self.clock.advance(minutes=7)
        r = None
        if reporter is not None:
            info = self.m.citizens[reporter]
            r = Reporter(
                openid=f"o{reporter}", name=f"市民{reporter}", verified=info["verified"], snapshot_user=info["snapshot"]
            )
        report = ReportCase(case_id=case_id, category=category, reported_at=self.clock.now(), reporter=r)
        assert self.expect(lambda uow: self.c.flows.report(uow, report, ACTOR))
        self.m.cases.append(ModelCase(case_id, reporter, category, len(self.m.cases)))
        self.done.append(report)

    @precondition(lambda self: self.m.cases)
    @rule(
        i=st.integers(0, 200),
        verdict=st.sampled_from(["valid", "valid", "invalid", "duplicate"]),
        j=st.integers(0, 200),
    )
    def verdict(self, i: int, verdict: str, j: int) -> None:
        mc = self.m.cases[i % len(self.m.cases)]
        dup = self.m.cases[j % len(self.m.cases)].case_id if verdict == "duplicate" else None
        self.clock.advance(minutes=3)
        command = GiveVerdict(mc.case_id, verdict, duplicate_of=dup)
        ok = self.expect(lambda uow: self.c.flows.verdict(uow, command, ACTOR))
        # model
        expected_ok: bool
        if verdict == "duplicate" and (dup == mc.case_id or self.model_case(dup).order > mc.order):
            expected_ok = False
        elif mc.verdict is not None:
            expected_ok = mc.verdict == verdict and mc.duplicate_of == dup
        else:
            expected_ok = True
            mc.verdict, mc.duplicate_of = verdict, dup
            mc.status = lc.FILED if verdict == "valid" else lc.REFUSED
            if verdict == "valid" and mc.reporter is not None and not self.m.citizens[mc.reporter]["snapshot"]:
                self.m.ledger[(mc.case_id, "valid_report")] = (mc.reporter, self.week(), CATEGORIES[mc.category])
        assert ok == expected_ok, (mc, verdict, dup)
        if ok:
            self.done.append(command)

    @precondition(lambda self: self.m.cases)
    @rule(i=st.integers(0, 200))
    def void(self, i: int) -> None:
        mc = self.m.cases[i % len(self.m.cases)]
        self.clock.advance(minutes=5)
        command = VoidCase(mc.case_id, "伪造现场")
        ok = self.expect(lambda uow: self.c.flows.void(uow, command, ACTOR))
        if mc.status == lc.VOIDED:
            expected_ok = True
        elif mc.status in lc.FILED_STATES:
            expected_ok = True
            mc.status = lc.VOIDED
            award = self.m.ledger.get((mc.case_id, "valid_report"))
            if award is not None:
                self.m.ledger[(mc.case_id, "void_reversal")] = (award[0], self.week(), -award[2])
        else:
            expected_ok = False
        assert ok == expected_ok, (mc, "void")
        if ok:
            self.done.append(command)

    @precondition(lambda self: self.m.cases)
    @rule(i=st.integers(0, 200), status=st.sampled_from([lc.DISPATCHED, lc.PROCESSING, lc.RESOLVED, lc.CLOSED]))
    def move(self, i: int, status: str) -> None:
        mc = self.m.cases[i % len(self.m.cases)]
        self.clock.advance(minutes=1)
        when = self.clock.now()
        ok = self.expect(lambda uow: self.c.flows.change_status(uow, ChangeStatus(mc.case_id, status, when), ACTOR))
        if mc.status == lc.VOIDED:
            expected_ok = True  # recorded, not applied
        else:
            expected_ok = lc.can_transition(mc.status, status)
            if expected_ok:
                mc.status = status
        assert ok == expected_ok, (mc, status)

    @precondition(lambda self: self.done)
    @rule(k=st.integers(0, 10_000))
    def replay(self, k: int) -> None:
        """Replaying any earlier successful command changes nothing."""
        command = self.done[k % len(self.done)]
        before = self.ledger_rows()
        statuses = self.statuses()
        self.clock.advance(minutes=1)
        assert self.expect(lambda uow: self.c.flows.handle(uow, command, ACTOR))
        assert self.ledger_rows() == before
        assert self.statuses() == statuses

    @rule(days=st.integers(1, 9))
    def time_passes(self, days: int) -> None:
        self.clock.advance(days=days)

    # --- invariants ----------------------------------------------------------------------------------
    def ledger_rows(self) -> dict[tuple[str, str], tuple[int, str, int]]:
        with self.c.read() as s:
            rows = s.execute(
                select(
                    Case.case_id, LedgerEntry.rule, LedgerEntry.citizen_id, LedgerEntry.week, LedgerEntry.points
                ).join(Case, Case.id == LedgerEntry.case_pk)
            ).all()
            openids = {}
            from rewards.cases.models import Citizen

            for cid, openid in s.execute(select(Citizen.id, Citizen.openid)).all():
                openids[cid] = int(openid[1:])
        return {(r[0], r[1]): (openids[r[2]], r[3], r[4]) for r in rows}

    def statuses(self) -> dict[str, str]:
        with self.c.read() as s:
            return dict(s.execute(select(Case.case_id, Case.status)).all())

    @invariant()
    def ledger_matches_model(self) -> None:
        assert self.ledger_rows() == self.m.ledger

    @invariant()
    def statuses_match_model(self) -> None:
        assert self.statuses() == {x.case_id: x.status for x in self.m.cases}

    @invariant()
    def totals_are_sums_and_never_negative(self) -> None:
        totals: dict[int, int] = {}
        for (_, rule_name), (cit, _, pts) in self.m.ledger.items():
            assert pts > 0 or rule_name == "void_reversal"
            totals[cit] = totals.get(cit, 0) + pts
        assert all(t >= 0 for t in totals.values())

    @invariant()
    def boards_were_handed_each_entry_once(self) -> None:
        ids = [e.entry_id for e in self.sink.entries]
        assert len(ids) == len(set(ids)) == len(self.m.ledger)


def test_incentive_loop_against_model(pg_engine: Engine, make_container: MakeContainer) -> None:
    LoopMachine.engine = pg_engine
    LoopMachine.make_container = make_container
    try:
        run_state_machine_as_test(
            LoopMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        LoopMachine.engine = LoopMachine.make_container = None
