"""Stateful test: random report / verdict / void / status / replay sequences through the real service layer on
PostgreSQL, checked against a plain-Python model of the program rules after every step."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import Engine, select

from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, SetBan, VoidCase
from rewards.cases.models import AuditEntry, Case, Citizen
from rewards.clock import FixedClock, IsoWeek, week_of
from rewards.errors import DomainError
from rewards.publish.notify import client_msg_id
from rewards.publish.outbox import OutboxPublisher
from rewards.publish.port import FINAL, Publisher
from rewards.review.models import ListVersion
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer, test_settings, wipe
from tests.fakes.ledger_seed import Person, add_citizens, add_entries
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


# ================================================================================================================
# The review of a published week (issue 12): objections, decisions, deadlines, 定榜 and claims as steps, checked
# after every step against a plain model of the rule "current version = the sealed pool minus every upheld entry".
# ================================================================================================================

REVIEW_EXAMPLES = int(os.environ.get("REVIEW_STATEFUL_EXAMPLES", "20"))
REVIEW_WEEK = "2026-W47"
REVIEW_TIERS = [
    {"first": 1, "last": 1, "name": "一等奖", "value": 300},
    {"first": 2, "last": 3, "name": "二等奖", "value": 100},
    {"first": 4, "last": 5, "name": "三等奖", "value": 50},
]
REVIEW_PLACES = 5
REVIEW_ELIGIBLE = 9  # 5 prize places + 4 in reserve
STAFF = Actor("validator-1", "console")


class CountingPublisher:
    """The outbox publisher, counting the calls that make an announcement or a notice go out."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.channel = inner.channel
        self.submits: list[str] = []  # media ids submitted (one per announcement)
        self.sends: list[str] = []  # client_msg_ids sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit(self, media_id: str) -> str:
        self.submits.append(media_id)
        return self.inner.submit(media_id)

    def send_template(self, openid: str, template_id: str, data: dict[str, Any], url: str, client_msg_id: str) -> str:
        self.sends.append(client_msg_id)
        return self.inner.send_template(openid, template_id, data, url, client_msg_id)


@dataclass
class ReviewModel:
    eligible: list[int] = field(default_factory=list)  # citizen ids in ranking order (distinct totals)
    openids: dict[int, str] = field(default_factory=dict)
    cases: dict[int, str] = field(default_factory=dict)  # citizen id -> the case that earned their points
    objections: list[dict[str, Any]] = field(default_factory=list)  # id, objector, target, status
    removed: list[int] = field(default_factory=list)  # upheld targets in decision order
    deadline: Any = None
    final: list[int] | None = None  # final winners by rank
    banned: set[int] = field(default_factory=set)
    redeemed: set[str] = field(default_factory=set)
    codes: dict[int, str] = field(default_factory=dict)  # winner -> code
    claim_deadline: Any = None

    def rows(self) -> list[int]:
        return [c for c in self.eligible if c not in self.removed][:REVIEW_PLACES]


class ReviewMachine(RuleBasedStateMachine):
    """The review use cases against the plain model."""

    engine: Engine | None = None
    make_container: MakeContainer | None = None

    def __init__(self) -> None:
        super().__init__()
        run = type(self)
        assert run.engine is not None and run.make_container is not None, "set by the test function"
        wipe(run.engine)
        self.clock = FixedClock(START)
        self.counting = CountingPublisher(OutboxPublisher(Path(tempfile.mkdtemp(prefix="review-outbox-"))))
        self.c = run.make_container(
            test_settings(prize_tiers=REVIEW_TIERS, wechat_winner_template_id="tpl-winner"),
            engine=run.engine,
            clock=self.clock,
            publisher=self.counting,
        )
        self.m = ReviewModel()
        self.sealed: dict[int, tuple[str, str]] = {}  # version number -> (canonical, checksum) as first seen
        start = IsoWeek.parse(REVIEW_WEEK).start(self.c.settings.tz)
        people = [Person(f"市民{i}号") for i in range(REVIEW_ELIGIBLE)] + [Person("未实名", verified=False)]
        ids = add_citizens(self.c, people, start)
        add_entries(self.c, REVIEW_WEEK, [(cid, 100 - i, start + timedelta(minutes=i)) for i, cid in enumerate(ids)])
        add_entries(self.c, REVIEW_WEEK, [(ids[-1], 500, start)])  # the unverified citizen tops the ledger
        self.m.eligible = ids[:REVIEW_ELIGIBLE]
        with self.c.read() as s:
            for cid, openid in s.execute(select(Citizen.id, Citizen.openid).where(Citizen.id.in_(ids))).all():
                self.m.openids[cid] = openid
            for cid, case_id in s.execute(
                select(LedgerEntry.citizen_id, Case.case_id).join(Case, Case.id == LedgerEntry.case_pk)
            ).all():
                self.m.cases.setdefault(cid, case_id)
        self.c.closer.close(IsoWeek.parse(REVIEW_WEEK))
        assert self.c.publishing.publish(REVIEW_WEEK).state == "published"
        self.m.deadline = self.c.review.status(REVIEW_WEEK).deadline
        self.c.review.current(REVIEW_WEEK)  # the pool is sealed when the week is first read, before any step
        self.objectors = [f"o-objector-{i}" for i in range(3)] + [self.m.openids[c] for c in self.m.eligible[:3]]

    # --- helpers -------------------------------------------------------------------------------------
    def refused(self, fn: Any, *args: Any, **kwargs: Any) -> str | None:
        """Run a use case; return the refusal's code (None when it went through)."""
        try:
            fn(*args, **kwargs)
        except DomainError as exc:
            assert exc.status < 500
            return exc.code
        return None

    def is_open(self) -> bool:
        return self.m.final is None and self.clock.now() < self.m.deadline

    def objection_at(self, k: int, open_only: bool) -> dict[str, Any] | None:
        pick = [o for o in self.m.objections if o["status"] == "open"] if open_only else []
        pick = pick or self.m.objections
        return pick[k % len(pick)] if pick else None

    # --- rules ---------------------------------------------------------------------------------------
    @rule(who=st.integers(0, 5), rank=st.integers(1, REVIEW_PLACES))
    def object(self, who: int, rank: int) -> None:
        self.object_as(who, rank, "ok")

    @rule(who=st.integers(0, 5), rank=st.integers(0, REVIEW_PLACES + 1), reason=st.sampled_from(["ok", "", "long"]))
    def object_badly(self, who: int, rank: int, reason: str) -> None:
        self.object_as(who, rank, reason)

    def object_as(self, who: int, rank: int, reason: str) -> None:
        openid = self.objectors[who]
        text = {"ok": "照片疑似摆拍", "": " ", "long": "长" * 10_240}[reason]
        rows = self.m.rows()
        target = rows[rank - 1] if 1 <= rank <= len(rows) else None
        if reason == "":
            expected: str | None = "reason_required"
        elif reason == "long":
            expected = "reason_too_long"
        elif rank < 1:
            expected = "invalid_rank"
        elif not self.is_open():
            expected = "objections_closed"
        elif target is None:
            expected = "no_such_rank"
        elif any(o["objector"] == openid and o["target"] == target for o in self.m.objections):
            expected = "already_objected"
        else:
            expected = None
        got = self.refused(self.c.review.object, REVIEW_WEEK, rank, openid, text)
        assert got == expected, (got, expected)
        if expected is None:
            ids = [o.id for o in self.c.review.objections(REVIEW_WEEK, status=None)]
            self.m.objections.append({"id": max(ids), "objector": openid, "target": target, "status": "open"})

    def _decide_expected(self, o: dict[str, Any]) -> str | None:
        if o["status"] != "open":
            return "objection_decided"
        if self.m.final is not None:
            return "week_final"
        return None

    @precondition(lambda self: self.m.objections)
    @rule(k=st.integers(0, 50), open_only=st.booleans())
    def reject(self, k: int, open_only: bool) -> None:
        o = self.objection_at(k, open_only)
        assert o is not None
        expected = self._decide_expected(o)
        assert self.refused(self.c.review.reject, o["id"], "经核查不属实", STAFF) == expected
        if expected is None:
            o["status"] = "rejected"

    @precondition(lambda self: self.m.objections)
    @rule(k=st.integers(0, 50), action=st.sampled_from(["void_case", "disqualify"]), open_only=st.booleans())
    def uphold(self, k: int, action: str, open_only: bool) -> None:
        o = self.objection_at(k, open_only)
        assert o is not None
        expected = self._decide_expected(o)
        case_id = self.m.cases[o["target"]] if action == "void_case" else None
        got = self.refused(self.c.review.uphold, o["id"], action, "经核查属实", STAFF, case_id=case_id)
        assert got == expected, (got, expected)
        if expected is None:
            o["status"] = "upheld"
            self.m.removed.append(o["target"])
            for other in self.m.objections:
                if other is not o and other["target"] == o["target"] and other["status"] == "open":
                    other["status"] = "moot"

    @rule()
    def work_through_the_queue(self) -> None:
        """The command center rejects every open objection in turn."""
        for o in [o for o in self.m.objections if o["status"] == "open"]:
            self.reject(0, True)
            assert o["status"] != "open" or self.m.final is not None

    @rule(hours=st.integers(1, 80))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)

    @rule(sweep=st.booleans())
    def finalize(self, sweep: bool) -> None:
        due = self.clock.now() >= self.m.deadline
        open_left = any(o["status"] == "open" for o in self.m.objections)
        if sweep:
            self.c.review.run_due()
        else:
            self.c.review.finalize(REVIEW_WEEK)
        if self.m.final is None and due and not open_left:
            self.m.final = self.m.rows()
            self.m.claim_deadline = self.clock.now() + timedelta(days=self.c.settings.claim_days)
            for claim in self.c.review.claims(REVIEW_WEEK):
                self.m.codes[claim.citizen_id] = claim.code

    @precondition(lambda self: self.m.eligible)
    @rule(i=st.integers(0, REVIEW_ELIGIBLE - 1))
    def ban(self, i: int) -> None:
        cid = self.m.eligible[i]
        with self.c.uow() as uow:
            self.c.flows.set_banned(uow, SetBan(self.m.openids[cid], True, "作弊"), STAFF)
        self.m.banned.add(cid)

    @precondition(lambda self: self.m.codes)
    @rule(i=st.integers(0, REVIEW_PLACES - 1), how=st.sampled_from(["code", "code", "malformed", "unknown", "spaced"]))
    def redeem(self, i: int, how: str) -> None:
        winner = sorted(self.m.codes)[i % len(self.m.codes)]
        code = self.m.codes[winner]
        typed = {
            "code": code,
            "spaced": code.replace("-", " ").lower(),
            "malformed": "12345",
            "unknown": "ABCD-EFGH-JKLM",
        }[how]
        voided = winner in self.m.removed  # a void_case entry lost its points; disqualified ones never get a code
        if how == "malformed":
            expected: str | None = "malformed_code"
        elif how == "unknown":
            expected = "unknown_code"
        elif code in self.m.redeemed:
            expected = "code_used"
        elif winner in self.m.banned or voided:
            expected = "code_revoked"
        elif self.clock.now() >= self.m.claim_deadline:
            expected = "code_expired"
        else:
            expected = None
        assert self.refused(self.c.review.redeem, typed, STAFF) == expected
        if expected is None:
            self.m.redeemed.add(code)

    def teardown(self) -> None:
        # what the example reached (shown by --hypothesis-show-statistics)
        event(f"versions: {1 + len(self.m.removed)}")
        event("final" if self.m.final is not None else "not final")
        event(f"redeemed: {len(self.m.redeemed)}")

    # --- invariants ----------------------------------------------------------------------------------
    @invariant()
    def no_sealed_version_ever_changes(self) -> None:
        with self.c.read() as s:
            stored = s.execute(select(ListVersion.number, ListVersion.canonical, ListVersion.checksum)).all()
        for number, canonical, checksum in stored:
            assert self.sealed.setdefault(number, (canonical, checksum)) == (canonical, checksum)
        assert len(stored) == len(self.sealed)

    @invariant()
    def the_current_version_is_the_derivation(self) -> None:
        current = self.c.review.current(REVIEW_WEEK)
        assert current.number == 1 + len(self.m.removed)
        assert [r.citizen_id for r in current.rows] == self.m.rows()
        assert [r.rank for r in current.rows] == list(range(1, len(current.rows) + 1))
        assert {o.id: o.status for o in self.c.review.objections(REVIEW_WEEK, status=None)} == {
            o["id"]: o["status"] for o in self.m.objections
        }

    @invariant()
    def every_final_winner_is_eligible(self) -> None:
        final = self.c.review.final(REVIEW_WEEK)
        if self.m.final is None:
            assert final is None
            return
        assert final is not None and [r.citizen_id for r in final.rows] == self.m.final
        assert all(cid in self.m.eligible and cid not in self.m.removed for cid in self.m.final)
        assert sorted(c.citizen_id for c in self.c.review.claims(REVIEW_WEEK)) == sorted(self.m.final)

    @invariant()
    def a_code_redeems_at_most_once(self) -> None:
        with self.c.read() as s:
            targets = s.scalars(select(AuditEntry.target).where(AuditEntry.action == "claim_redeemed")).all()
        assert len(targets) == len(set(targets)) == len(self.m.redeemed)
        redeemed = {c.code for c in self.c.review.claims(REVIEW_WEEK) if c.redeemed_at is not None}
        assert redeemed == self.m.redeemed

    @invariant()
    def the_final_announcement_goes_out_exactly_once(self) -> None:
        finals = [m for m in self.counting.submits if m.endswith("-final")]
        assert len(finals) == (1 if self.m.final is not None else 0)
        assert len(self.counting.sends) == len(set(self.counting.sends))  # every notice once
        final_notices = {client_msg_id(REVIEW_WEEK, cid, FINAL) for cid in self.m.final or []}
        assert final_notices <= set(self.counting.sends)


def test_review_against_model(pg_engine: Engine, make_container: MakeContainer) -> None:
    ReviewMachine.engine = pg_engine
    ReviewMachine.make_container = make_container
    try:
        run_state_machine_as_test(
            ReviewMachine,
            settings=settings(
                max_examples=REVIEW_EXAMPLES,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        ReviewMachine.engine = ReviewMachine.make_container = None
