"""Scoring service: turns verdicts and voids into ledger rows, then hands committed rows to the boards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from rewards.cases.models import Case, Citizen
from rewards.clock import Clock, local_day, week_of
from rewards.config import Settings
from rewards.db import UnitOfWork
from rewards.scoring import ledger
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import AwardDecision, CaseFacts, CitizenFacts, EntryFacts, NoAward, RuleSettings
from rewards.scoring.rules import award_on_filing, reversal_on_void


class EntrySink(Protocol):
    """Where committed ledger entries go after commit (the Redis boards); must be safe to repeat."""

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Apply each entry exactly once, keyed by its entry_id."""
        ...


def rule_settings(settings: Settings) -> RuleSettings:
    """Return the rule switches and the category point table from Settings."""
    return RuleSettings(
        category_points={c.code: c.points for c in settings.categories},
        anonymous_earns=settings.anonymous_earns,
        daily_award_limit=settings.daily_award_limit,
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

    def __init__(self, settings: Settings, clock: Clock, sink: EntrySink | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.sink = sink
        self.rules = rule_settings(settings)

    def award_filed(self, uow: UnitOfWork, case: Case) -> LedgerEntry | NoAward | None:
        """Award a case filed as valid; None when it was already awarded (replay)."""
        now = self.clock.now()
        facts = case_facts(case)
        awards_today = 0
        if self.rules.daily_award_limit is not None and facts.reporter is not None:
            tz = self.settings.tz
            day = local_day(now, tz)
            start = datetime.combine(day, time.min, tzinfo=tz)
            awards_today = ledger.count_awards_on_day(
                uow.session, facts.reporter.citizen_id, start, start + timedelta(days=1)
            )
        decision = award_on_filing(facts, self.rules, awards_today)
        if isinstance(decision, NoAward):
            return decision
        return self._write(uow, decision)

    def reverse_voided(self, uow: UnitOfWork, case: Case) -> LedgerEntry | None:
        """Write the reversal that nets a voided case to zero; None when nothing is left to reverse."""
        lines = [(e.citizen_id, e.rule, e.points) for e in ledger.entries_for_case(uow.session, case.id)]
        decision = reversal_on_void(case.id, case.case_id, lines)
        if decision is None:
            return None
        return self._write(uow, decision)

    def _write(self, uow: UnitOfWork, decision: AwardDecision) -> LedgerEntry | None:
        now = self.clock.now()
        entry = ledger.insert_entry(uow.session, decision, str(week_of(now, self.settings.tz)), now)
        if entry is not None and self.sink is not None:
            facts = ledger.facts_for_entries(uow.session, [entry])
            sink = self.sink
            uow.after_commit(lambda: sink.apply(facts))
        return entry


def citizen_points(session: Session, citizen_id: int, week: str) -> tuple[int, int, Sequence[LedgerEntry]]:
    """Return (all-time total, this week's total, ledger lines newest first)."""
    lines = ledger.entries_for_citizen(session, citizen_id)
    total = sum(e.points for e in lines)
    this_week = sum(e.points for e in lines if e.week == week)
    return total, this_week, lines
