"""Seed citizens and ledger lines straight into SQL for snapshot and publishing tests."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime

from rewards.bootstrap import Container
from rewards.cases.models import Case, Citizen
from rewards.scoring.ledger import LedgerEntry, facts_for_entries

_seq = itertools.count(1)


@dataclass(frozen=True)
class Person:
    """A citizen to create."""

    name: str | None
    verified: bool = True
    banned: bool = False


def add_citizens(container: Container, people: list[Person], at: datetime) -> list[int]:
    """Create citizens and return their ids in the same order."""
    with container.uow() as uow:
        rows = [
            Citizen(
                openid=f"o-{uuid.uuid4().hex}",
                name=p.name,
                verified=p.verified,
                banned=p.banned,
                created_at=at,
                updated_at=at,
            )
            for p in people
        ]
        uow.session.add_all(rows)
        uow.session.flush()
        return [r.id for r in rows]


def add_entries(container: Container, week: str, lines: list[tuple[int, int, datetime]], boards: bool = True) -> None:
    """Write ledger lines (citizen_id, points, created_at) toward a week, each on its own case; like the scoring
    service, hand the committed entries to the boards after commit (boards=False: the boards miss them)."""
    entries: list[LedgerEntry] = []
    with container.uow() as uow:
        for citizen_id, points, created_at in lines:
            n = next(_seq)
            case = Case(
                case_id=f"SEED-{uuid.uuid4().hex[:12]}-{n}",
                reporter_id=citizen_id,
                category="street_lamp",
                description="",
                coord_system="wgs84",
                photos=[],
                status="filed",
                status_at=created_at,
                reported_at=created_at,
                updated_at=created_at,
            )
            uow.session.add(case)
            uow.session.flush()
            entry = LedgerEntry(
                citizen_id=citizen_id,
                case_pk=case.id,
                rule="valid_report",
                points=points,
                week=week,
                reason="seed",
                created_at=created_at,
            )
            uow.session.add(entry)
            entries.append(entry)
        uow.session.flush()
        facts = facts_for_entries(uow.session, entries)
        if boards:
            sink = container.sink
            uow.after_commit(lambda: sink.apply(facts))
