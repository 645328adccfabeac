"""Scoring service: turns verdicts and voids into ledger rows, then hands committed rows to the boards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta, tzinfo

from sqlalchemy.orm import Session

from rewards.cases.models import Case, Citizen
from rewards.clock import Clock, local_day, week_of
from rewards.config import Settings
from rewards.db import UnitOfWork
from rewards.scoring import ledger
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import (
    RULE_RATING_AWARD,
    RULE_VALID_REPORT,
    AwardDecision,
    CaseFacts,
    CategoryRule,
    CitizenFacts,
    NoAward,
    RuleSettings,
)
from rewards.scoring.ports import BoardSink
from rewards.scoring.rules import RATING_AWARD_OFF, award_on_filing, award_on_rating, reversal_on_void


def rule_settings(settings: Settings) -> RuleSettings:
    """Return every scoring rule setting (category table, daily limit) from Settings."""
    return RuleSettings(
        categories=tuple(CategoryRule(c.code, c.name, c.group, c.points) for c in settings.categories),
        daily_award_limit=settings.daily_award_limit,
        rating_award_points=settings.rating_award_points,
        rating_award_daily_cap=settings.rating_award_daily_cap,
    )


def citizen_facts(citizen: Citizen | None) -> CitizenFacts | None:
    """Return what the rules need to know about a reporter."""
    if citizen is None:
        return None
    return CitizenFacts(citizen.id, citizen.verified, citizen.banned, citizen.snapshot_user)


def case_facts(case: Case) -> CaseFacts:
    """Return what the rules need to know about a case."""
    return CaseFacts(case.id, case.case_id, case.category, citizen_facts(case.reporter), case.reported_at)


class ScoringService:
    """Writes awards and reversals idempotently; the boards learn of them only after commit."""

    def __init__(self, rules: RuleSettings, tz: tzinfo, clock: Clock, sink: BoardSink) -> None:
        self.rules = rules
        self.tz = tz
        self.clock = clock
        self.sink = sink
        # set on a batch's own copy (intake): its lines are written together by `write_pending`, not one by one
        self.pending: ledger.PendingLedger | None = None

    def award_filed(self, uow: UnitOfWork, case: Case) -> LedgerEntry | NoAward | None:
        """Award a case filed as valid; None when it was already awarded (replay) or is queued (`pending`)."""
        decision = self.decide_filed(uow, case)
        if isinstance(decision, NoAward):
            return decision
        return self.write_award(uow, decision, case.reporter)  # locked with the case: its district is current

    def decide_filed(self, uow: UnitOfWork, case: Case) -> AwardDecision | NoAward:
        """What a case filed as valid earns (the rules), before anything is written: the verdict's flow writes the
        case's own changes in the same statement as the award (`write_award`)."""
        facts = case_facts(case)
        awards_today = 0
        if self.rules.daily_award_limit is not None and facts.reporter is not None:
            start = datetime.combine(local_day(self.clock.now(), self.tz), time.min, tzinfo=self.tz)
            awards_today = self._awards_on_day(uow, facts.reporter.citizen_id, start, RULE_VALID_REPORT)
        return award_on_filing(facts, self.rules, awards_today)

    def write_award(self, uow: UnitOfWork, decision: AwardDecision, known: Citizen | None = None) -> LedgerEntry | None:
        """Write a decided award once (None: already written, or queued for `write_pending`); the boards learn of
        it after commit.

        `known`: the citizen, already loaded and locked with the case (its district and eligibility are current).
        """
        return self._write(uow, decision, known)

    def award_rating(self, uow: UnitOfWork, case: Case, citizen_id: int) -> LedgerEntry | NoAward | None:
        """The optional award for rating a handled report (rules.award_on_rating); None when already awarded."""
        if self.rules.rating_award_points <= 0:
            return NoAward(RATING_AWARD_OFF)  # off: no query, no ledger line
        start = datetime.combine(local_day(self.clock.now(), self.tz), time.min, tzinfo=self.tz)
        today = self._awards_on_day(uow, citizen_id, start, RULE_RATING_AWARD)
        decision = award_on_rating(case.id, case.case_id, citizen_id, self.rules, today)
        if isinstance(decision, NoAward):
            return decision
        return self._write(uow, decision)

    def reverse_voided(self, uow: UnitOfWork, case: Case) -> LedgerEntry | None:
        """Write the reversal that nets a voided case to zero; None when nothing is left to reverse."""
        if self.pending is None:
            stored = ledger.entries_for_case(uow.session, case.id)
        else:  # the batch's lines are not written yet: its own lines of the case (filed earlier in it) count too
            with uow.session.no_autoflush:  # ledger rows are never ORM objects: the batch's pending cases may wait
                stored = ledger.entries_for_case(uow.session, case.id)
        lines = [(e.citizen_id, e.rule, e.points) for e in stored]
        if self.pending is not None:
            lines += self.pending.lines_for_case(case.id)
        decision = reversal_on_void(case.id, case.case_id, lines)
        if decision is None:
            return None
        return self._write(uow, decision, case.reporter)

    def write_pending(self, uow: UnitOfWork) -> int:
        """Write the batch's queued lines in one statement (after its cases are flushed: they are the lines' foreign
        keys); the rows inserted reach the boards after commit. Returns how many were inserted."""
        if self.pending is None:
            return 0
        facts = self.pending.write(uow.session)
        if facts:
            sink = self.sink
            uow.after_commit(lambda: sink.apply(facts))
        return len(facts)

    def _awards_on_day(self, uow: UnitOfWork, citizen_id: int, start: datetime, rule: str) -> int:
        """A citizen's positive awards of `rule` on the local day beginning at `start` (a batch's queued ones too)."""
        end = start + timedelta(days=1)
        if self.pending is not None:
            return self.pending.awards_on_day(uow.session, citizen_id, start, end, rule)
        return ledger.count_awards_on_day(uow.session, citizen_id, start, end, rule=rule)

    def _write(self, uow: UnitOfWork, decision: AwardDecision, known: Citizen | None = None) -> LedgerEntry | None:
        now = self.clock.now()
        if self.pending is not None:
            self.pending.add(decision, str(week_of(now, self.tz)), now, known)
            return None
        entry = ledger.insert_entry(uow.session, decision, str(week_of(now, self.tz)), now)
        if entry is not None:
            facts = ledger.facts_for_entries(uow.session, [entry], [known] if known is not None else [])
            sink = self.sink
            uow.after_commit(lambda: sink.apply(facts))
        return entry


def citizen_points(session: Session, citizen_id: int, week: str) -> tuple[int, int, Sequence[LedgerEntry]]:
    """Return (all-time total, this week's total, ledger lines newest first)."""
    lines = ledger.entries_for_citizen(session, citizen_id)
    total = sum(e.points for e in lines)
    this_week = sum(e.points for e in lines if e.week == week)
    return total, this_week, lines
