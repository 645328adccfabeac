"""Prometheus metrics of the web service: what is counted at the edges, and what is read on each scrape.

Counted (counters and a histogram, added up across workers in multiprocess mode):
- rewards_http_requests_total{method,route,status} and rewards_http_request_duration_seconds{method,route}: the
  route is the path template (`/api/v1/citizens/{openid}/points`), never the path, so no openid becomes a label;
- rewards_verdicts_total{verdict}: verdicts committed (valid, invalid, duplicate), from any edge;
- rewards_intake_events_total{result}: applications of intake events that committed, applied or failed (a failed
  event applied later by a replay counts once failed, then once applied);
- rewards_redis_breaker_opened_total{breaker}: times the Redis circuit breaker opened.
The verdicts and intake results are read from the units of work as they commit (SQLAlchemy session events on the
container's session factory): the domain imports nothing of this, and a rolled-back transaction counts nothing.

Read on scrape, from the worker that answers (its projector and breaker) and the database:
- rewards_projector_lag_rows, _lag_seconds, _last_pass_ok, _seconds_since_success, _dirty;
- rewards_redis_breaker_state{breaker}: 0 closed, 1 half-open, 2 open;
- rewards_publication_state{week,kind,state}: 1 for each week's current state, 0 for the others (the last
  RECENT_WEEKS weeks, and every week not published);
- rewards_intake_unapplied_events{status}: inbox events failed or still pending;
- rewards_metrics_database_ok: 0 when the database did not answer the scrape's queries in time (they are skipped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker
from sqlalchemy.orm.attributes import get_history

from intake_adapter.models import APPLIED, FAILED, PENDING, InboxEvent
from rewards.cases.commands import VERDICTS
from rewards.cases.models import Case
from rewards.db import COMMITTED_NOTES, Database
from rewards.health import STATE_CODES, CircuitBreaker
from rewards.leaderboard.projector import Projector
from rewards.observability.probe import Probe
from rewards.publish.models import PUBLISHED, STATES, Publication

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
INTAKE_RESULTS = (APPLIED, FAILED)
RECENT_WEEKS = 8
STORED_STATE_TIMEOUT = 2.0  # seconds a scrape waits for the database's answers


class Metrics:
    """The collectors of one application. Single process: its own registry. Multiprocess: the shared files."""

    def __init__(self, multiproc_dir: str | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.registry: CollectorRegistry | None = None if multiproc_dir else CollectorRegistry()
        reg = self.registry
        self.requests = Counter(
            "rewards_http_requests", "HTTP requests answered, by route template", ["method", "route", "status"],
            registry=reg,
        )  # fmt: skip
        self.latency = Histogram(
            "rewards_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.verdicts = Counter("rewards_verdicts", "Verdicts committed, by verdict", ["verdict"], registry=reg)
        self.intake = Counter(
            "rewards_intake_events", "Intake events whose application committed, by result", ["result"], registry=reg
        )
        self.breaker_opened = Counter(
            "rewards_redis_breaker_opened", "Times the Redis circuit breaker opened", ["breaker"], registry=reg
        )
        for verdict in VERDICTS:
            self.verdicts.labels(verdict)
        for result in INTAKE_RESULTS:
            self.intake.labels(result)
        self._scraped: list[Collector] = []
        if reg is not None:  # multiprocess mode cannot add up process figures: single process only
            ProcessCollector(registry=reg)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its duration."""
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def count_verdict(self, verdict: str) -> None:
        """Count a committed verdict."""
        self.verdicts.labels(verdict if verdict in VERDICTS else "other").inc()

    def count_intake(self, result: str) -> None:
        """Count an intake event whose application committed with this result."""
        self.intake.labels(result if result in INTAKE_RESULTS else "other").inc()

    def read_on_scrape(self, collector: Collector) -> None:
        """Add a collector that reads live state at each scrape (in the answering worker)."""
        self._scraped.append(collector)
        if self.registry is not None:
            self.registry.register(collector)

    def render(self) -> bytes:
        """The exposition text of every metric."""
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self.multiproc_dir)  # type: ignore[no-untyped-call]  # untyped upstream
        for collector in self._scraped:
            registry.register(collector)
        return generate_latest(registry)


class BreakerOpenings:
    """Carries the breaker's count of openings into the (cross-worker) counter; called per request and scrape."""

    def __init__(self, breaker: CircuitBreaker, metrics: Metrics) -> None:
        self.breaker = breaker
        self.counter = metrics.breaker_opened.labels(breaker.name)
        self._seen = 0
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Add the openings since the last call."""
        opened = self.breaker.snapshot().opened
        with self._lock:
            delta, self._seen = opened - self._seen, max(opened, self._seen)
        if delta > 0:
            self.counter.inc(delta)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class LiveState:
    """Scrape-time gauges of this worker's projector and Redis breaker."""

    def __init__(
        self, projector: Projector, breaker: CircuitBreaker, openings: BreakerOpenings, now: Callable[[], float]
    ) -> None:
        self.projector = projector
        self.breaker = breaker
        self.openings = openings
        self._now = now

    def describe(self) -> Iterable[Metric]:
        """Nothing to announce: read at each scrape only."""
        return []

    def collect(self) -> Iterable[Metric]:
        """The projector's last pass and the breaker's state, now."""
        self.openings.sync()
        s = self.projector.status
        yield _gauge("rewards_projector_lag_rows", "Ledger entries the boards missed at the last pass", s.lag_rows)
        yield _gauge("rewards_projector_lag_seconds", "Age of the oldest entry missed at the last pass", s.lag_seconds)
        yield _gauge("rewards_projector_last_pass_ok", "1 when the projector's last pass succeeded", float(s.ok))
        yield _gauge("rewards_projector_dirty", "1 when a board update failed since the last good pass", float(s.dirty))
        if s.last_ok_at is not None:
            since = max(0.0, self._now() - s.last_ok_at)
            yield _gauge("rewards_projector_seconds_since_success", "Seconds since the last good pass", since)
        snap = self.breaker.snapshot()
        state = GaugeMetricFamily(
            "rewards_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 half-open, 2 open", labels=["breaker"]
        )
        state.add_metric([snap.name], STATE_CODES[snap.state])
        yield state


@dataclass(frozen=True)
class StoredFacts:
    """What the database says at a scrape."""

    publications: list[tuple[str, str, str]]  # (week, kind, state): the 公示 notice and the 定榜 final
    unapplied: dict[str, int]  # inbox status -> events


def read_stored_facts(db: Database) -> StoredFacts:
    """The recent and unfinished publications, and the intake events not applied."""
    with db.read() as session:
        cols = (Publication.week, Publication.kind, Publication.state)
        recent = select(*cols).order_by(Publication.week.desc()).limit(RECENT_WEEKS)
        unfinished = select(*cols).where(Publication.state != PUBLISHED)
        rows = {(w, k, s) for q in (recent, unfinished) for w, k, s in session.execute(q)}
        counts = session.execute(
            select(InboxEvent.status, func.count())
            .where(InboxEvent.status.in_((FAILED, PENDING)))
            .group_by(InboxEvent.status)
        )
        unapplied = {FAILED: 0, PENDING: 0} | {status: int(n) for status, n in counts}
    return StoredFacts(sorted(rows), unapplied)


class StoredState:
    """Scrape-time gauges from the database, each scrape waiting for it at most STORED_STATE_TIMEOUT seconds."""

    def __init__(self, db: Database, timeout: float = STORED_STATE_TIMEOUT) -> None:
        self.timeout = timeout
        self._probe: Probe[StoredFacts] = Probe("metrics-db", lambda: read_stored_facts(db))

    def describe(self) -> Iterable[Metric]:
        """Nothing to announce: read at each scrape only."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Publication states per week and unapplied intake events, when the database answers in time."""
        outcome = self._probe.run(self.timeout)
        facts = outcome.value
        answered = float(facts is not None)
        yield _gauge("rewards_metrics_database_ok", "1 when the database answered this scrape", answered)
        if facts is None:
            return
        states = GaugeMetricFamily(
            "rewards_publication_state",
            "1 for the state each week's publication (kind notice: 公示, final: 定榜) is in",
            labels=["week", "kind", "state"],
        )
        for week, kind, current in facts.publications:
            for state in STATES:
                states.add_metric([week, kind, state], float(state == current))
        yield states
        unapplied = GaugeMetricFamily(
            "rewards_intake_unapplied_events", "Intake events stored but not applied, by status", labels=["status"]
        )
        for status, n in sorted(facts.unapplied.items()):
            unapplied.add_metric([status], n)
        yield unapplied


_NOTES = COMMITTED_NOTES  # Session.info key: what this transaction will have done once committed


class CommittedCounts:
    """Counts verdicts and intake results as the units of work that made them commit (session events)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def install(self, sessions: sessionmaker[Session]) -> None:
        """Listen to every session the factory makes."""
        event.listen(sessions, "after_flush", self._note)
        event.listen(sessions, "after_commit", self._count)
        event.listen(sessions, "after_rollback", self._forget)

    def _note(self, session: Session, _flush: UOWTransaction) -> None:
        notes: list[tuple[str, str]] = session.info.setdefault(_NOTES, [])
        for obj in (*session.new, *session.dirty):
            if isinstance(obj, Case):
                verdict = _newly_set(obj, "verdict")
                if verdict is not None:
                    notes.append(("verdict", verdict))
            elif isinstance(obj, InboxEvent) and _changed(obj, "attempts") and obj.status in INTAKE_RESULTS:
                notes.append(("intake", obj.status))  # every application raises attempts, applied or failed

    def _count(self, session: Session) -> None:
        for kind, value in session.info.pop(_NOTES, []):
            if kind == "verdict":
                self.metrics.count_verdict(value)
            else:
                self.metrics.count_intake(value)

    def _forget(self, session: Session) -> None:
        session.info.pop(_NOTES, None)


def _newly_set(case: Case, attribute: str) -> str | None:
    """The value this flush gave an attribute that was empty before; else None."""
    history = get_history(case, attribute)
    if not history.added or any(v is not None for v in history.deleted):
        return None
    value = history.added[-1]
    return value if isinstance(value, str) else None


def _changed(obj: InboxEvent, attribute: str) -> bool:
    """Whether this flush changed the attribute."""
    return bool(get_history(obj, attribute).added)
