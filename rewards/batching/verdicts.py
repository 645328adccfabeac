"""Verdicts that arrive together are given together: one transaction, one COMMIT, one board update for all of them.

The command center's console posts verdicts from many desks at once. Each alone costs a locked read, a write, a
COMMIT (and its fsync) and a board update, and the statements' overhead in the ORM and the driver is most of a
verdict's domain CPU. A `VerdictBatcher` lets concurrent verdicts share that (group commit): its thread gives every
verdict waiting (up to MAX_BATCH) in one transaction, and while it does, the verdicts that arrive wait for the next
batch. A verdict alone (none other waiting) is given at once through the single path, as before.

A batch of several (PostgreSQL) is set-based, as intake's batches are: its cases are locked in id order with their
timelines in one statement, the verdicts run in memory, then its case changes go in one flush, its ledger lines in
one INSERT, its history and audit rows in one INSERT each, and it commits once; its awards reach the boards in one
pipelined call after the commit. Each verdict keeps its own answer: the case with its timeline, or the error it
alone would have got. The verdicts run optimistically, without SAVEPOINTs; if one fails (a refused verdict, a value
the database refuses, a deadlock), the pass is rolled back whole and run again with each verdict in a SAVEPOINT, so
one bad verdict never takes the others down. Nothing is answered before the COMMIT: a batch that cannot commit
answers every verdict in it with that error (503 when the database is down), and none of them changed anything.

The guarantees of the single path hold: the same verdict twice (in one batch or in two, in one process or in two)
files and awards the case once; verdicts in two batches of the same case wait for each other on the case's lock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from rewards.batching.board_batch import batched_flows
from rewards.batching.optimistic import NeedSavepoints, optimistic, write_pass
from rewards.cases import service as cases
from rewards.cases.commands import Actor, GiveVerdict
from rewards.cases.models import Case
from rewards.db import DEFER_ROWS, Database, UnitOfWork, flush_rows, retryable, savepoint
from rewards.errors import Conflict, DomainError, Invalid, Unavailable
from rewards.flows import CaseFlows

T = TypeVar("T")
Answer = Callable[[Session, Case], T]  # builds a verdict's answer in its transaction, after the batch's writes

MAX_BATCH = 64  # verdicts in one transaction at most: more wait for the next (a bound on a batch's lock set)
# Under load, how long a batch may wait for the verdicts in flight before it starts (see `_take`): a few requests'
# worth of the event loop's work (answering the last batch, reading the next verdicts), like PostgreSQL's commit_delay
GATHER_SECONDS = 0.003


def _resolve(answered: asyncio.Future[None]) -> None:
    if not answered.done():
        answered.set_result(None)


@dataclass(eq=False)
class _Verdict(Generic[T]):
    """One request's verdict, waiting in the batcher until a batch has answered it."""

    command: GiveVerdict
    actor: Actor
    answer: Answer[T]
    wake: Callable[[], None]  # called once the verdict is answered (from the batch's thread)
    result: T | None = None
    error: BaseException | None = None
    case: Case | None = field(default=None, repr=False)  # this pass's case (its answer is built after the writes)

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set when there is no error


class VerdictBatcher:
    """Gives concurrent verdicts together (see the module's doc); one per process, shared by every request.

    One thread of its own gives the batches, started with the first verdict: a request waits for its answer without
    holding a thread (`give_async`, the API), or blocks its own (`give`). `close` gives what is still waiting, then
    stops the thread."""

    def __init__(
        self, db: Database, flows: CaseFlows, max_batch: int = MAX_BATCH, gather: float = GATHER_SECONDS
    ) -> None:
        self.db = db
        self.flows = flows
        self.max_batch = max_batch
        self.gather = gather
        self._cond = threading.Condition()
        self._waiting: deque[_Verdict[object]] = deque()
        self._wanted = 1  # how many waiting verdicts wake the batches' thread (more while it gathers)
        self._last = 0  # verdicts in the last batch
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # batches given, and the verdicts in them (read by tests and benchmarks)
        self.verdicts = 0

    @property
    def waiting(self) -> int:
        """How many verdicts wait for a batch (not counting the batch being given)."""
        with self._cond:
            return len(self._waiting)

    @property
    def gathering(self) -> bool:
        """Whether the next batch waits for the verdicts in flight (see `_take`)."""
        with self._cond:
            return self._wanted > 1

    def give(self, command: GiveVerdict, actor: Actor, answer: Answer[T]) -> T:
        """Give the verdict, alone or in a batch with the others waiting; return `answer(session, case)`, built in
        its transaction after the verdict's writes, or raise the error the verdict got. Blocks until then."""
        answered = threading.Event()
        item = _Verdict(command, actor, answer, answered.set)
        self._submit(item)
        answered.wait()
        return item.outcome()

    async def give_async(self, command: GiveVerdict, actor: Actor, answer: Answer[T]) -> T:
        """`give` for the event loop: the request waits for its batch without holding a thread."""
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            loop.call_soon_threadsafe(_resolve, answered)

        item = _Verdict(command, actor, answer, wake)
        self._submit(item)
        # a request cancelled meanwhile (its client left) does not cancel its verdict: the batch gives it all the same
        await asyncio.shield(answered)
        return item.outcome()

    def close(self) -> None:
        """Give the verdicts still waiting, then stop the batches' thread (no verdict is taken after this)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _submit(self, item: _Verdict[T]) -> None:
        with self._cond:
            if self._closed:
                raise Unavailable("the service is shutting down, please retry")
            self._waiting.append(item)  # type: ignore[arg-type]  # the batch keeps each verdict's own answer type
            if self._thread is None:
                self._thread = threading.Thread(target=self._run_batches, name="verdict-batches", daemon=True)
                self._thread.start()
            if len(self._waiting) >= self._wanted:
                self._cond.notify()

    def _run_batches(self) -> None:
        """The batches' thread: give everything waiting, a batch at a time, until closed and nothing waits."""
        while True:
            batch = self._take()
            if batch is None:
                return
            self._give(batch)
            for item in batch:
                item.wake()

    def _take(self) -> list[_Verdict[object]] | None:
        """Wait for the next batch and take it (None: closed, and nothing waits).

        A verdict that finds the batcher idle, or after a batch of one, starts at once. Under load (the last batch
        held several) the next batch waits up to `gather` seconds for the verdicts in flight: as many as the last
        batch held (their clients answered, likely to send the next) plus those that waited as it ended. Without this
        wait the batches settle into a batch of one and a batch of the rest, taking turns; each batch's statements,
        COMMIT and board call cost the same CPU whatever its size, and the web worker's requests share that CPU (one
        interpreter lock), so fewer, fuller batches give more verdicts a second."""
        with self._cond:
            wanted = min(self._last + len(self._waiting), self.max_batch)  # in flight as the last batch ended
            while not self._waiting and not self._closed:
                self._cond.wait()
            if self._last > 1 and len(self._waiting) < wanted and not self._closed:
                deadline = time.monotonic() + self.gather
                self._wanted = wanted  # a verdict submitted meanwhile wakes this thread only once they are all in
                while len(self._waiting) < wanted and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                self._wanted = 1
            if not self._waiting:
                return None
            batch = [self._waiting.popleft() for _ in range(min(len(self._waiting), self.max_batch))]
            self._last = len(batch)
            return batch

    # -- one batch ---------------------------------------------------------------------------------------------

    def _give(self, batch: list[_Verdict[object]]) -> None:
        """Give the batch's verdicts and answer each; every verdict is answered (an error included) on return."""
        try:
            if len(batch) == 1:
                self._give_alone(batch[0])
            else:
                try:
                    self._pass(batch, careful=False)
                except NeedSavepoints:  # everything of that pass was rolled back
                    self._pass(batch, careful=True)
        except BaseException as exc:  # the transaction failed whole (the database is down, say): nothing changed
            for item in batch:
                item.result, item.error = None, exc
        self.batches += 1
        self.verdicts += len(batch)

    def _give_alone(self, item: _Verdict[object]) -> None:
        """One verdict through the single path (its locked read brings the timeline, its writes ride along)."""
        with self.db.uow() as uow:
            case = self.flows.verdict(uow, item.command, item.actor, answer_timeline=True)
            result = item.answer(uow.session, case)
        item.result = result

    def _pass(self, batch: list[_Verdict[object]], *, careful: bool) -> None:
        """Give the batch in one transaction. Optimistic (careful=False): no SAVEPOINTs, the ledger lines written
        together at the end, and any failure raises NeedSavepoints (after the rollback). Careful: each verdict in a
        SAVEPOINT with its own writes; a verdict that fails gets its error and changes nothing."""
        answered: list[tuple[_Verdict[object], object]] = []
        errors: list[tuple[_Verdict[object], DomainError]] = []
        with self.db.uow() as uow:
            uow.defer_rows = True  # the batch's history/audit rows go in one statement per table before COMMIT
            uow.session.info[DEFER_ROWS] = True
            uow.queue_updates = not careful  # optimistic: the cases' UPDATEs go with the rows, in one statement
            flows, boards = batched_flows(self.flows, defer_ledger=not careful)
            cases.preload(uow.session, {item.command.case_id for item in batch}, (), timelines=True)
            for item in batch:
                item.case = None
                error = self._run(uow, flows, item, careful=careful)
                if error is not None:
                    errors.append((item, error))
            if not careful:
                write_pass(uow, flows)
            flush_rows(uow.session)  # the answers' timelines may be read from the database: the rows go first
            with uow.session.no_autoflush:
                for item in batch:
                    if item.case is not None:
                        answered.append((item, item.answer(uow.session, item.case)))
            cases.forget_preloaded(uow.session)
            uow.after_commit(boards.send)  # last: the flows' effects queued before it only note their calls
        for item, result in answered:  # committed: answer
            item.result = result
        for item, error in errors:
            item.error = error

    def _run(self, uow: UnitOfWork, flows: CaseFlows, item: _Verdict[object], *, careful: bool) -> DomainError | None:
        """Run one verdict of the pass (its case kept on the item); careful: in a SAVEPOINT, and return the error
        that refused it (its writes undone). Optimistic: any failure is NeedSavepoints."""
        if not careful:
            with optimistic():
                item.case = flows.verdict(uow, item.command, item.actor, answer_timeline=True)
            return None
        for attempt in (1, 2, 3):
            try:
                with savepoint(uow):
                    case = flows.verdict(uow, item.command, item.actor, answer_timeline=True)
                    uow.session.flush()  # the verdict's own writes now, in its SAVEPOINT: a refused value is its own
            except DomainError as exc:
                cases.forget_preloaded(uow.session)
                return exc
            except DataError as exc:  # a value the database cannot hold that validation let through
                cases.forget_preloaded(uow.session)
                return Invalid(f"a value cannot be stored ({type(exc.orig).__name__})", code="invalid_value")
            except (IntegrityError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not retryable(exc):
                    raise  # the connection is gone: the whole batch rolls back
                cases.forget_preloaded(uow.session)
                if attempt == 3:
                    return Conflict(
                        "a concurrent write to the same case won; retry the verdict", code="concurrent_write"
                    )
                continue
            item.case = case
            return None
        raise AssertionError("unreachable")
