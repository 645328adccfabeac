"""Shared fixtures: real PostgreSQL and Redis (a private database and key prefix per test run), SQLite."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Protocol

import pytest
import redis
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from rewards import migrate
from rewards.bootstrap import Container, bootstrap
from rewards.clock import Clock, FixedClock
from rewards.config import Settings, load_settings
from rewards.db import Base, make_engine
from rewards.publish.port import Publisher
from rewards.scoring.ports import BoardSink

PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_ID = uuid.uuid4().hex[:8]
VALIDATOR_TOKEN = "test-validator-token"
INTAKE_TOKEN = "test-intake-token"
ADMIN_TOKEN = "test-admin-token"
START = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # a Wednesday, 10:00 in Asia/Shanghai (2026-W48)

# Hypothesis: a fast loop while developing, a thorough run in CI, from the same tests (HYPOTHESIS_PROFILE overrides;
# a test's own @settings(max_examples=...) still wins)
hypothesis_settings.register_profile("dev", max_examples=25, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def unreachable(what: str, exc: Exception) -> None:
    """Fail under CI=true, skip elsewhere: a real service is required, never a fake."""
    message = f"{what} is unreachable: {exc}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def test_settings(**overrides: object) -> Settings:
    """Settings for tests: known tokens, a private Redis key prefix, everything else default."""
    values: dict[str, object] = {
        "api_tokens": {
            VALIDATOR_TOKEN: {"name": "validator-1", "role": "validator"},
            INTAKE_TOKEN: {"name": "city-case-system", "role": "intake"},
            ADMIN_TOKEN: {"name": "admin-1", "role": "admin"},
        },
        "leaderboard_key_prefix": f"t{RUN_ID}",
        "intake_secret": "test-intake-secret",
        "open311_api_keys": ["test-open311-key"],
        "session_secret": "test-session-secret",
    }
    values.update(overrides)
    return load_settings(**values)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated to head; dropped afterwards."""
    name = f"rewards_test_{RUN_ID}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        unreachable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file migrated to head."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'rewards.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def wipe(engine: Engine) -> None:
    """Empty every table (faster than re-migrating between tests)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture(scope="session")
def redis_server() -> redis.Redis:
    """The real Redis server."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.RedisError as exc:
        unreachable("Redis", exc)
    return client


def flush_prefix(client: redis.Redis, prefix: str) -> None:
    """Remove this run's keys only (other runs may share the server)."""
    for key in client.scan_iter(match=f"*{prefix}*", count=1000):
        client.unlink(key)


@pytest.fixture
def clock() -> FixedClock:
    """A clock fixed at START, moved by tests."""
    return FixedClock(START)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    """A migrated, empty database: real PostgreSQL and SQLite."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else sqlite_url
    engine = make_engine(url)
    wipe(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated, empty PostgreSQL database."""
    engine = make_engine(pg_url)
    wipe(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings() -> Settings:
    """Test settings."""
    return test_settings()


class MakeContainer(Protocol):
    """The factory fixture: bootstrap() with the test's defaults, cleaned up after the test."""

    def __call__(
        self,
        settings: Settings | None = None,
        *,
        engine: Engine,
        clock: Clock | None = None,
        redis_client: redis.Redis | None = None,
        sink: BoardSink | None = None,
        publisher: Publisher | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Container: ...


@pytest.fixture
def make_container(redis_server: redis.Redis, clock: FixedClock, settings: Settings) -> Iterator[MakeContainer]:
    """Build services the way production does (bootstrap()), defaulting to this test's settings, clock and the real
    Redis; each container's Redis keys are wiped before and after the test. The engine is always named by the test
    (db_engine for both databases, pg_engine for PostgreSQL only)."""
    made: list[Container] = []
    prefixes: list[str] = []  # wiped once each: a second container on a prefix must not erase the first one's keys

    def make(
        settings_: Settings | None = None,
        *,
        engine: Engine,
        clock: Clock | None = None,
        redis_client: redis.Redis | None = None,
        sink: BoardSink | None = None,
        publisher: Publisher | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Container:
        s = settings_ if settings_ is not None else settings
        if s.leaderboard_key_prefix not in prefixes:
            prefixes.append(s.leaderboard_key_prefix)
            flush_prefix(redis_server, s.leaderboard_key_prefix)
        client = redis_client if redis_client is not None else redis_server
        c = bootstrap(s, clock=clock or the_clock, engine=engine, redis_client=client, sink=sink, publisher=publisher,
                      sleep=sleep)  # fmt: skip
        made.append(c)
        return c

    the_clock = clock
    yield make
    for c in made:
        c.projector.stop()
    for prefix in prefixes:
        flush_prefix(redis_server, prefix)


_EXAMPLES = itertools.count()  # session-wide: no two hypothesis examples of any test share a Redis prefix


@pytest.fixture
def per_example(db_engine: Engine, make_container: MakeContainer) -> Callable[[], Container]:
    """A factory of fresh containers for hypothesis examples: an empty database, a private Redis prefix (wiped before
    and after the test) and a clock at START."""

    def make() -> Container:
        wipe(db_engine)
        s = test_settings()
        s = s.model_copy(update={"leaderboard_key_prefix": f"{s.leaderboard_key_prefix}-ex{next(_EXAMPLES)}"})
        return make_container(s, engine=db_engine, clock=FixedClock(START))

    return make


@pytest.fixture
def container(db_engine: Engine, make_container: MakeContainer) -> Container:
    """The real service wired to real PostgreSQL/SQLite and real Redis under a private key prefix."""
    return make_container(engine=db_engine)


@pytest.fixture
def client(container: Container) -> Iterator[object]:
    """An HTTP client for the app."""
    from fastapi.testclient import TestClient

    from rewards.app import create_app

    with TestClient(create_app(container)) as http:
        yield http


def auth(token: str = VALIDATOR_TOKEN) -> dict[str, str]:
    """Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cli_env(container: Container, db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a `rewards` command reads: the test database, the real Redis, this run's key prefix."""
    values = {
        "REWARDS_DATABASE_URL": db_engine.url.render_as_string(hide_password=False),
        "REWARDS_REDIS_URL": REDIS_URL,
        "REWARDS_LEADERBOARD_KEY_PREFIX": container.settings.leaderboard_key_prefix,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
