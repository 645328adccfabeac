"""Intake: keep every event raw in the inbox, then apply a batch in one transaction through CaseFlows.

Nothing lost: a batch's events are committed to the inbox (one multi-row INSERT) before they are applied, and one
that cannot be applied stays there as failed with its reason, to be applied again by `rewards intake replay` (or
automatically when a later event for the same case succeeds). Nothing twice: applying an event and marking it
applied commit together, and an applied event id is never applied again.

Set-based: the batch's inbox rows, its cases (locked, in id order) and its citizens are read in three statements,
and (PostgreSQL) the ids of its new cases are taken from the sequence in one more; its events then run in memory,
and at its end its new cases go in one INSERT (as the events left them: reported and filed in the batch, a case is
inserted filed), its other ORM changes in one flush, its ledger lines in one INSERT … ON CONFLICT DO NOTHING
RETURNING (only the rows it returns reach the boards; until then the daily limit and a void read the batch's
queued lines too), the inbox rows' outcomes in one UPDATE, its history and audit rows in one INSERT each, and the
batch commits once: a dozen statements for a batch of any size (`db.insert_rows`). SQLite, without a sequence,
inserts each new case at once. An event refused by validation (or from the future) fails before any SQL. The
events run optimistically, without SAVEPOINTs; if one fails after touching SQL, or the batch's writes at its end
fail (a value the database refuses, a case a concurrent batch created first), that pass is rolled back whole and
run again with each event in a SAVEPOINT and written with it, so a bad event is rolled back alone and never takes
the good ones down (the results, order and inbox outcomes are those of the careful pass).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from intake_adapter import inbox
from intake_adapter.models import APPLIED, FAILED, PENDING, InboxEvent
from intake_adapter.results import BatchOutcome, EventResult, InboxView, ReplaySummary, failure
from intake_adapter.schemas import ReportSubmitted, StatusChanged, parse_event
from intake_adapter.translate import translate_report, translate_status
from rewards.batching.board_batch import batched_flows
from rewards.batching.optimistic import NeedSavepoints, optimistic, write_pass
from rewards.bootstrap import Container
from rewards.cases import service as cases
from rewards.cases.commands import Actor, ChangeStatus
from rewards.clock import Clock
from rewards.db import DEFER_ROWS, Database, UnitOfWork, note_on_commit, one_of, retryable, savepoint, update_rows
from rewards.errors import Conflict, DomainError, Invalid, Unavailable
from rewards.flows import CaseFlows

ACTOR = Actor("city-case-system", "intake")
MAX_REPLAY_PASSES = 50
REPORT = "report.submitted"  # the event type that may create a case


class IntakeService:
    """Stores, applies and replays intake events through the case flows."""

    def __init__(self, db: Database, flows: CaseFlows, clock: Clock, future_tolerance_seconds: int) -> None:
        self.db = db
        self.flows = flows
        self.clock = clock
        self.future_tolerance = timedelta(seconds=future_tolerance_seconds)

    @classmethod
    def of(cls, c: Container) -> IntakeService:
        """The intake service over an application's services."""
        return cls(c.db, c.flows, c.clock, c.settings.intake_replay_window_seconds)

    def receive(self, raw_events: Sequence[object]) -> BatchOutcome:
        """Store every event, then apply the new ones oldest first, each in its own transaction."""
        results: list[EventResult | None] = [None] * len(raw_events)
        envelopes: dict[int, inbox.Envelope] = {}
        first_index: dict[str, int] = {}
        for i, raw in enumerate(raw_events):
            try:
                env = inbox.read_envelope(raw)
            except Invalid as exc:
                eid = raw.get("event_id") if isinstance(raw, dict) else None
                results[i] = failure(inbox.echo_id(eid), exc, "rejected")
                continue
            if env.event_id in first_index:
                msg = f"event_id {env.event_id!r} appears more than once in this batch"
                results[i] = failure(env.event_id, Invalid(msg, code="repeated_event_id"), "rejected")
                continue
            first_index[env.event_id] = i
            envelopes[i] = env
        to_apply = self._store(envelopes, results)
        also: dict[int, EventResult] = {}
        if to_apply:
            ordered = sorted(to_apply, key=lambda i: (envelopes[i].occurred_at is None, envelopes[i].occurred_at, i))
            case_ids = {c for i in ordered if (c := envelopes[i].case_id) is not None}
            self._apply_batch([(i, to_apply[i]) for i in ordered], case_ids, results, also)
        return BatchOutcome([r for r in results if r is not None], list(also.values()))

    def replay(self, max_passes: int = MAX_REPLAY_PASSES) -> ReplaySummary:
        """Apply failed (and stranded pending) events in occurred_at order, pass after pass, until none progress."""
        attempted: set[int] = set()
        applied: list[EventResult] = []
        passes = 0
        for passes in range(1, max_passes + 1):  # noqa: B007  (the last value is reported)
            progress = False
            for pk in self._unapplied():
                attempted.add(pk)
                res = self._apply(pk)
                if res.result == "applied":
                    applied.append(res)
                    progress = True
            if not progress:
                break
        still = [self._describe(pk) for pk in self._unapplied()]
        return ReplaySummary(len(attempted), applied, still, passes)

    # -- storing -------------------------------------------------------------------------------------------

    def _store(self, envelopes: dict[int, inbox.Envelope], results: list[EventResult | None]) -> dict[int, int]:
        """Commit the events to the inbox; return {request index: inbox id} of those to apply now."""
        if not envelopes:
            return {}
        to_apply: dict[int, int] = {}
        with self.db.uow() as uow:
            now = self.clock.now()
            fresh = inbox.insert_many(uow.session, list(envelopes.values()), now)  # event_id -> new inbox id
            known = [e.event_id for e in envelopes.values() if e.event_id not in fresh]
            rows = inbox.rows_by_event_id(uow.session, known) if known else {}
            for i, env in envelopes.items():
                if env.event_id in fresh:
                    to_apply[i] = fresh[env.event_id]
                    continue
                row = rows[env.event_id]
                if row.status != APPLIED:
                    if row.payload != env.payload:
                        inbox.replace_payload(row, env)  # a corrected re-send of an event not applied yet
                    to_apply[i] = row.id
                elif row.payload == env.payload:
                    results[i] = EventResult(env.event_id, "duplicate", type=env.type, case_id=env.case_id)
                else:
                    msg = f"event_id {env.event_id!r} was already applied with different content"
                    results[i] = failure(env.event_id, Conflict(msg, code="event_id_reused"))
        return to_apply

    # -- applying a batch ----------------------------------------------------------------------------------

    def _apply_batch(
        self,
        ordered: list[tuple[int, int]],
        case_ids: set[str],
        results: list[EventResult | None],
        also: dict[int, EventResult],
    ) -> None:
        """Apply the batch's stored events (request index, inbox id) in order, in one transaction.

        As the one-at-a-time path did: after an event is applied, the case's failed events (this batch's and earlier
        ones) are retried oldest first while that makes progress; those not in this batch are reported in `also`.
        """
        try:  # optimistic: no SAVEPOINTs; the first event that fails once it has touched SQL aborts this pass
            self._apply_pass(ordered, case_ids, results, also, careful=False)
        except NeedSavepoints:  # everything of that pass was rolled back: run again, each event in a SAVEPOINT
            self._apply_pass(ordered, case_ids, results, also, careful=True)

    def _apply_pass(
        self,
        ordered: list[tuple[int, int]],
        case_ids: set[str],
        results: list[EventResult | None],
        also: dict[int, EventResult],
        *,
        careful: bool,
    ) -> None:
        index_of = {pk: i for i, pk in ordered}
        out, more = list(results), dict(also)  # kept only if the pass commits
        with self.db.uow() as uow:
            uow.defer_rows = True  # the batch's history/audit rows go in one executemany before COMMIT
            uow.session.info[DEFER_ROWS] = True  # ... not as CTEs of each ledger INSERT (compiled anew each time)
            # the batch's awards reach the boards in one pipelined call; optimistic: its ledger lines are written in
            # one statement at its end (careful: each event's with it, in its SAVEPOINT)
            flows, boards = batched_flows(self.flows, defer_ledger=not careful)
            batch = _Batch(uow, self.clock.now(), careful, flows)
            batch.load([pk for _, pk in ordered], case_ids)
            for i, pk in ordered:
                if out[i] is not None:
                    continue  # already applied by a retry triggered earlier in this batch
                res = out[i] = self._apply_in(batch, pk)
                if res.result == "applied" and res.case_id:
                    for retried_pk, retried in self._retry_in(batch, res.case_id):
                        if retried_pk in index_of:
                            out[index_of[retried_pk]] = retried
                        else:
                            more[retried_pk] = retried
            if not careful:
                write_pass(uow, flows)
            batch.save()
            uow.after_commit(boards.send)  # last: the flows' effects queued before it only note their calls
        results[:] = out
        also.update(more)

    def _apply_in(self, batch: _Batch, pk: int) -> EventResult:
        """Apply one event of the batch in a SAVEPOINT; a failure is noted on its inbox row and returned."""
        row = batch.rows[pk]
        if row.status == APPLIED:  # applied by a concurrent request before this batch locked it
            return EventResult(row.event_id, "duplicate", type=row.type, case_id=row.case_id)
        try:
            event = parse_event(row.raw())
            self._check_not_future(event)
        except DomainError as exc:
            return batch.failed(row, exc)
        if not batch.careful:
            with optimistic():  # a lost connection rolls the whole batch back: its events stay pending
                result = self._execute(batch.uow, event, batch.flows)
            batch.applied(row)
            return result
        for attempt in (1, 2, 3):
            try:
                with savepoint(batch.uow):
                    result = self._execute(batch.uow, event, batch.flows)
            except DomainError as exc:
                cases.forget_preloaded(batch.uow.session)
                return batch.failed(row, exc)
            except DataError as exc:  # a value the database cannot hold that validation let through
                cases.forget_preloaded(batch.uow.session)
                msg = f"a value cannot be stored ({type(exc.orig).__name__})"
                return batch.failed(row, Invalid(msg, code="invalid_value"))
            except (IntegrityError, OperationalError) as exc:
                # a concurrent request created the same case or citizen first (or a deadlock victim was chosen):
                # the step was rolled back alone; the retry reads again and sees the winner's rows
                if isinstance(exc, OperationalError) and not retryable(exc):
                    raise  # the connection is gone: the whole batch rolls back, its events stay pending
                cases.forget_preloaded(batch.uow.session)
                if attempt == 3:
                    msg = "a concurrent write to the same case won; retry the event"
                    return batch.failed(row, Conflict(msg, code="concurrent_write"))
                continue
            batch.applied(row)
            return result
        raise AssertionError("unreachable")

    def _retry_in(self, batch: _Batch, case_id: str) -> Iterable[tuple[int, EventResult]]:
        """Re-apply the case's failed events, oldest first, while that makes progress; yield the ones applied."""
        while True:
            progress = False
            for row in batch.failed_of(case_id):
                res = self._apply_in(batch, row.id)
                if res.result == "applied":
                    progress = True
                    yield row.id, res
            if not progress:
                return

    # -- applying one event (replay) -----------------------------------------------------------------------

    def _apply(self, pk: int) -> EventResult:
        """Apply one stored event; a failure is recorded on its inbox row and returned, not raised."""
        for attempt in (1, 2):
            try:
                return self._apply_once(pk)
            except Unavailable:
                raise  # the database is down: leave the event pending, the sender or `replay` retries
            except DomainError as exc:
                return self._mark_failed(pk, exc)
            except DataError as exc:  # a value the database cannot hold that validation let through: this event fails
                msg = f"a value cannot be stored ({type(exc.orig).__name__})"
                return self._mark_failed(pk, Invalid(msg, code="invalid_value"))
            except IntegrityError:
                # a concurrent request created the same case or citizen first; the retry sees it and replays
                if attempt == 2:
                    msg = "a concurrent write to the same case won; retry the event"
                    return self._mark_failed(pk, Conflict(msg, code="concurrent_write"))
        raise AssertionError("unreachable")

    def _apply_once(self, pk: int) -> EventResult:
        with self.db.uow() as uow:
            row = self._locked(uow, pk)
            if row.status == APPLIED:
                return EventResult(row.event_id, "duplicate", type=row.type, case_id=row.case_id)
            event = parse_event(json.loads(row.payload))
            self._check_not_future(event)
            result = self._execute(uow, event, self.flows)
            row.status = APPLIED
            row.applied_at = self.clock.now()
            row.error = None
            row.attempts += 1
            return result

    def _execute(self, uow: UnitOfWork, event: ReportSubmitted | StatusChanged, flows: CaseFlows) -> EventResult:
        eid = event.event_id
        res = EventResult(eid, "applied", type=event.type, case_id=event.case_id)
        if isinstance(event, ReportSubmitted):
            case, created = flows.report(uow, translate_report(event), ACTOR, event_id=eid)
            res.effect, res.case_status = ("created" if created else "unchanged"), case.status
            return res
        command = translate_status(event)
        before = cases.case_status(uow.session, event.case_id)  # a batch has the case preloaded: no query
        if isinstance(command, ChangeStatus):
            case, moved = flows.change_status(uow, command, ACTOR, event_id=eid)
            res.effect = "moved" if moved else "recorded"
        else:
            case = flows.handle(uow, command, ACTOR, event_id=eid)
            res.effect = "moved" if case.status != before else "unchanged"
        res.case_status = case.status
        return res

    def _check_not_future(self, event: ReportSubmitted | StatusChanged) -> None:
        # an event from the future would make every real event look late and freeze the case
        limit = self.clock.now() + self.future_tolerance
        if event.occurred_at > limit:
            raise Invalid(
                f"occurred_at {event.occurred_at.isoformat()} is in the future "
                f"(server time {self.clock.now().isoformat(timespec='seconds')})",
                code="future_event",
            )

    def _mark_failed(self, pk: int, exc: DomainError) -> EventResult:
        with self.db.uow() as uow:
            row = self._locked(uow, pk)
            if row.status == APPLIED:  # a concurrent request applied it meanwhile
                return EventResult(row.event_id, "duplicate", type=row.type, case_id=row.case_id)
            row.status = FAILED
            # messages may quote the refused input; PostgreSQL text cannot hold NUL
            row.error = f"[{exc.status} {exc.code}] {exc.message}".replace("\x00", "\\x00")
            row.attempts += 1
            res = failure(row.event_id, exc)
            res.type, res.case_id = row.type, row.case_id
            return res

    def _retry_case(self, case_id: str) -> Iterable[tuple[int, EventResult]]:
        """Re-apply the case's failed events, oldest first, while that makes progress; yield the ones applied."""
        while True:
            with self.db.read() as session:
                pks = session.scalars(
                    select(InboxEvent.id)
                    .where(InboxEvent.case_id == case_id, InboxEvent.status == FAILED)
                    .order_by(InboxEvent.occurred_at.is_(None), InboxEvent.occurred_at, InboxEvent.id)
                ).all()
            progress = False
            for pk in pks:
                res = self._apply(pk)
                if res.result == "applied":
                    progress = True
                    yield pk, res
            if not progress:
                return

    # -- reading -------------------------------------------------------------------------------------------

    def _locked(self, uow: UnitOfWork, pk: int) -> InboxEvent:
        row = uow.session.scalar(select(InboxEvent).where(InboxEvent.id == pk).with_for_update())
        if row is None:
            raise AssertionError(f"inbox row {pk} vanished")  # rows are never deleted
        return row

    def _unapplied(self) -> list[int]:
        with self.db.read() as session:
            stmt = (
                select(InboxEvent.id)
                .where(InboxEvent.status.in_((FAILED, PENDING)))
                .order_by(InboxEvent.occurred_at.is_(None), InboxEvent.occurred_at, InboxEvent.id)
            )
            return list(session.scalars(stmt).all())

    def _describe(self, pk: int) -> InboxView:
        with self.db.read() as session:
            row = session.get_one(InboxEvent, pk)
            return InboxView(row.event_id, row.type, row.case_id, row.status, row.attempts, row.error)


@dataclass
class _Row:
    """An inbox row as the batch holds it; its outcome is written back with the others in one executemany."""

    id: int
    event_id: str
    type: str
    case_id: str | None
    occurred_at: datetime | None
    payload: str
    status: str
    attempts: int
    error: str | None = None
    applied_at: datetime | None = None
    changed: bool = False
    parsed: object = None

    def raw(self) -> object:
        """The stored event as JSON data (parsed once)."""
        if self.parsed is None:
            self.parsed = json.loads(self.payload)
        return self.parsed


class _Batch:
    """One batch's transaction: its inbox rows (locked), the failed rows of its cases, and their new outcomes."""

    def __init__(self, uow: UnitOfWork, now: datetime, careful: bool, flows: CaseFlows) -> None:
        self.uow = uow
        self.flows = flows  # the case flows writing to this batch's BoardBatch
        self.now = now
        self.careful = careful  # each event in a SAVEPOINT (after an optimistic pass failed)
        self.rows: dict[int, _Row] = {}
        self.failing: set[str | None] = set()  # cases with a failed row (most batches: none, no scan per event)

    def load(self, pks: list[int], case_ids: set[str]) -> None:
        """Lock the batch's rows and its cases' failed ones (id order), then lock its cases and load its citizens."""
        session = self.uow.session
        who: ColumnElement[bool] = one_of(session, InboxEvent.id, pks)
        if case_ids:
            who = who | (one_of(session, InboxEvent.case_id, case_ids) & (InboxEvent.status == FAILED))
        cols = (InboxEvent.id, InboxEvent.event_id, InboxEvent.type, InboxEvent.case_id, InboxEvent.occurred_at)
        stmt = select(*cols, InboxEvent.payload, InboxEvent.status, InboxEvent.attempts, InboxEvent.error)
        for r in session.execute(stmt.where(who).order_by(InboxEvent.id).with_for_update()):
            self.rows[r.id] = row = _Row(*r)
            if row.status == FAILED:
                self.failing.add(row.case_id)
        openids = {openid for pk in pks if (openid := _reporter_openid(self.rows[pk].raw())) is not None}
        cases.preload(session, case_ids, openids)
        if not self.careful:  # optimistic: the new cases' ids in one statement, the cases in one INSERT at the end
            reported = {r.case_id for r in self.rows.values() if r.type == REPORT and r.case_id in case_ids}
            cases.reserve_case_ids(session, sum(1 for c in reported if cases.find_case(session, c) is None))

    def failed_of(self, case_id: str) -> list[_Row]:
        """The case's failed rows, oldest first (as the one-at-a-time path ordered them)."""
        if case_id not in self.failing:
            return []
        rows = [r for r in self.rows.values() if r.case_id == case_id and r.status == FAILED]
        return sorted(rows, key=lambda r: (r.occurred_at is None, r.occurred_at, r.id))

    def applied(self, row: _Row) -> None:
        row.status, row.applied_at, row.error, row.changed = APPLIED, self.now, None, True
        row.attempts += 1

    def failed(self, row: _Row, exc: DomainError) -> EventResult:
        row.status, row.changed = FAILED, True
        self.failing.add(row.case_id)
        # messages may quote the refused input; PostgreSQL text cannot hold NUL
        row.error = f"[{exc.status} {exc.code}] {exc.message}".replace("\x00", "\\x00")
        row.attempts += 1
        res = failure(row.event_id, exc)
        res.type, res.case_id = row.type, row.case_id
        return res

    def save(self) -> None:
        """Write every changed row's outcome in one executemany (the batch's queued rows follow before COMMIT)."""
        changed = [
            {"id": r.id, "status": r.status, "error": r.error, "attempts": r.attempts, "applied_at": r.applied_at}
            for r in self.rows.values()
            if r.changed
        ]
        if changed:
            update_rows(self.uow.session, InboxEvent.__table__, changed)
            for row in changed:  # the bulk UPDATE shows no ORM object to the metrics listener: note the results
                note_on_commit(self.uow.session, "intake", str(row["status"]))
        cases.forget_preloaded(self.uow.session)


def _reporter_openid(raw: object) -> str | None:
    """The reporter's openid of a stored report, if it has one (to load the batch's citizens at once)."""
    reporter = raw.get("reporter") if isinstance(raw, dict) else None
    openid = reporter.get("openid") if isinstance(reporter, dict) else None
    # read before validation: a value PostgreSQL cannot even compare (NUL) would fail the whole batch's SELECT;
    # such an event fails validation on its own, so its reporter is never needed
    if not isinstance(openid, str) or "\x00" in openid or not 0 < len(openid) <= 128:
        return None
    return openid
