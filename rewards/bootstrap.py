"""Composition root: builds engine, Redis, boards, publisher and clock from Settings; tests pass overrides."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from rewards.cases.flows import CaseFlows
from rewards.clock import Clock, SystemClock
from rewards.config import Settings, load_settings
from rewards.db import UnitOfWork, make_engine, make_sessionmaker, unit_of_work
from rewards.logs import get_logger
from rewards.scoring.service import EntrySink, ScoringService

log = get_logger("bootstrap")


def make_redis(settings: Settings) -> redis.Redis:
    """Connect to REWARDS_REDIS_URL, or start the embedded in-process Redis when it is unset."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2
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

    @contextmanager
    def uow(self) -> Iterator[UnitOfWork]:
        """Open one transaction; after-commit effects that fail are logged and left for `rewards check`."""
        with unit_of_work(self.sessions, self._effects_failed) as uow:
            yield uow

    @contextmanager
    def read(self) -> Iterator[Session]:
        """Open a read-only session."""
        session = self.sessions()
        try:
            yield session
        finally:
            session.close()

    def _effects_failed(self, failures: list[Exception]) -> None:
        for exc in failures:
            log.warning("after-commit effect failed (ledger is committed; boards will reconcile): %r", exc)

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
