"""Intake: keep every event raw in the inbox, then apply each one in its own transaction through CaseFlows.

Nothing lost: an event is committed to the inbox before it is applied, and one that cannot be applied stays
there as failed with its reason, to be applied again by `rewards intake replay` (or automatically when a later
event for the same case succeeds). Nothing twice: applying an event and marking it applied commit together, and
an applied event id is never applied again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from intake_adapter import inbox
from intake_adapter.models import APPLIED, FAILED, PENDING, InboxEvent
from intake_adapter.results import BatchOutcome, EventResult, InboxView, ReplaySummary, failure
from intake_adapter.schemas import ReportSubmitted, StatusChanged, parse_event
from intake_adapter.translate import translate_report, translate_status
from rewards.bootstrap import Container
from rewards.cases.commands import Actor, ChangeStatus
from rewards.cases.models import Case
from rewards.clock import Clock
from rewards.db import Database, UnitOfWork
from rewards.errors import Conflict, DomainError, Invalid, Unavailable
from rewards.flows import CaseFlows

ACTOR = Actor("city-case-system", "intake")
MAX_REPLAY_PASSES = 50


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
        index_of = {pk: i for i, pk in to_apply.items()}
        also: dict[int, EventResult] = {}
        ordered = sorted(to_apply, key=lambda i: (envelopes[i].occurred_at is None, envelopes[i].occurred_at, i))
        for i in ordered:
            if results[i] is not None:
                continue  # already applied by a retry triggered earlier in this batch
            res = results[i] = self._apply(to_apply[i])
            if res.result == "applied" and res.case_id:
                for pk, retried in self._retry_case(res.case_id):
                    if pk in index_of:
                        results[index_of[pk]] = retried
                    else:
                        also[pk] = retried
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
            fresh = {i for i, env in envelopes.items() if inbox.insert_new(uow.session, env, now)}
            rows = inbox.rows_by_event_id(uow.session, [e.event_id for e in envelopes.values()])
            for i, env in envelopes.items():
                row = rows[env.event_id]
                if i in fresh or row.status != APPLIED:
                    if row.payload != env.payload:
                        inbox.replace_payload(row, env)  # a corrected re-send of an event not applied yet
                    to_apply[i] = row.id
                elif row.payload == env.payload:
                    results[i] = EventResult(env.event_id, "duplicate", type=env.type, case_id=env.case_id)
                else:
                    msg = f"event_id {env.event_id!r} was already applied with different content"
                    results[i] = failure(env.event_id, Conflict(msg, code="event_id_reused"))
        return to_apply

    # -- applying ------------------------------------------------------------------------------------------

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
            result = self._execute(uow, event)
            row.status = APPLIED
            row.applied_at = self.clock.now()
            row.error = None
            row.attempts += 1
            return result

    def _execute(self, uow: UnitOfWork, event: ReportSubmitted | StatusChanged) -> EventResult:
        eid = event.event_id
        res = EventResult(eid, "applied", type=event.type, case_id=event.case_id)
        if isinstance(event, ReportSubmitted):
            case, created = self.flows.report(uow, translate_report(event), ACTOR, event_id=eid)
            res.effect, res.case_status = ("created" if created else "unchanged"), case.status
            return res
        command = translate_status(event)
        before = uow.session.scalar(select(Case.status).where(Case.case_id == event.case_id))
        if isinstance(command, ChangeStatus):
            case, moved = self.flows.change_status(uow, command, ACTOR, event_id=eid)
            res.effect = "moved" if moved else "recorded"
        else:
            case = self.flows.handle(uow, command, ACTOR, event_id=eid)
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
