"""Composition root: builds engine, Redis, boards, publisher and clock from Settings; tests pass overrides."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rewards.cases.flows import CaseFlows
from rewards.clock import Clock, SystemClock
from rewards.config import Settings, load_settings
from rewards.db import Effect, FailedEffect, UnitOfWork, make_engine, make_sessionmaker, run_effects, unit_of_work
from rewards.logs import get_logger
from rewards.scoring.service import EntrySink, ScoringService

log = get_logger("bootstrap")
PENDING_EFFECTS_MAX = 100_000


def make_redis(settings: Settings) -> redis.Redis:
    """Connect to REWARDS_REDIS_URL, or start the embedded in-process Redis when it is unset."""
    if settings.redis_url:
        # One quick retry, not redis-py's default backoff of several seconds: a request facing a dead Redis must
        # fall back (stale rank, ledger answer) well inside WeChat's 5-second reply window.
        return redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=0.5,
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
            health_check_interval=30,
        )
    import fakeredis

    return fakeredis.FakeRedis(decode_responses=True, server=fakeredis.FakeServer(version=(7, 0)))


@dataclass
class Container:
    """Everything a route, job or command needs, built once."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    scoring: ScoringService
    flows: CaseFlows
    boards: Any = None
    publisher: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    # after-commit effects that failed (Redis down): retried after later commits, so the boards converge by
    # themselves once Redis is back; beyond the bound, `rewards rebuild` is the repair
    pending: deque[Effect] = field(default_factory=lambda: deque(maxlen=PENDING_EFFECTS_MAX))
    _pending_lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def uow(self) -> Iterator[UnitOfWork]:
        """Open one transaction; failed after-commit effects are kept and retried after the next commits."""
        with unit_of_work(self.sessions, self._effects_failed) as uow:
            yield uow
        if self.pending:
            self.reconcile()

    def reconcile(self) -> int:
        """Retry the pending after-commit effects in order; stop at the first failure. Return how many remain."""
        with self._pending_lock:
            while self.pending:
                effect = self.pending[0]
                if run_effects([effect]):
                    break
                self.pending.popleft()
            remaining = len(self.pending)
        if remaining == 0:
            log.info("pending leaderboard updates applied: the boards have caught up")
        return remaining

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only session."""
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()

    def _effects_failed(self, failures: list[FailedEffect]) -> None:
        with self._pending_lock:
            for effect, exc in failures:
                if len(self.pending) == self.pending.maxlen:
                    log.error("too many pending leaderboard updates: run `rewards rebuild` once Redis is back")
                self.pending.append(effect)
                log.warning("after-commit effect failed (ledger is committed; will retry): %r", exc)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
        with suppress(Exception):  # closing a dead connection is not worth failing shutdown
            self.redis.close()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    redis_client: redis.Redis | None = None,
    boards: EntrySink | None = None,
    publisher: Any = None,
) -> Container:
    """Build the container; every argument overrides the part Settings would build."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    client = redis_client if redis_client is not None else make_redis(settings)
    if boards is None:
        from rewards.leaderboard.boards import Boards

        boards = Boards(client, settings)
    if publisher is None:  # WeChat when app id + secret are set, else the outbox folder
        from rewards.publish.wechat import make_publisher

        publisher = make_publisher(settings, client)
    scoring = ScoringService(settings, clock, boards)
    flows = CaseFlows(settings, clock, scoring)
    container = Container(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        redis=client,
        scoring=scoring,
        flows=flows,
        boards=boards,
        publisher=publisher,
    )
    return container
