"""An optimistic pass of a batch: its steps run without SAVEPOINTs and its writes go together at its end; whatever
a careful pass (a SAVEPOINT per step) would pin on one step aborts it, so that the caller rolls it back and runs it
again carefully. Shared by intake's event batches and the verdicts' batches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from rewards.cases import service as cases
from rewards.db import UnitOfWork, retryable
from rewards.errors import DomainError
from rewards.flows import CaseFlows


class NeedSavepoints(Exception):
    """A step failed in an optimistic pass: roll the pass back, run it again with a SAVEPOINT per step."""


@contextmanager
def optimistic() -> Iterator[None]:
    """Run a step (or the pass's writes) optimistically: a refusal, a value the database refuses, a conflict or a
    deadlock victim becomes NeedSavepoints; a lost connection stays what it is (the whole batch rolls back)."""
    try:
        yield
    except (DomainError, DataError, IntegrityError) as exc:
        raise NeedSavepoints from exc
    except OperationalError as exc:
        if retryable(exc):
            raise NeedSavepoints from exc
        raise


def write_pass(uow: UnitOfWork, flows: CaseFlows) -> None:
    """Send an optimistic pass's pending writes: its new cases (ids reserved up front), the case and citizen changes
    its steps left for one flush, then its ledger lines (their foreign keys are those cases) in one statement. A value
    the database refuses, or a case a concurrent batch created first, cannot be traced to its step here: the pass is
    run again with SAVEPOINTs, which write each step's changes alone."""
    with optimistic():
        cases.insert_new_cases(uow.session)
        uow.session.flush()
        flows.scoring.write_pending(uow)
