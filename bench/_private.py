"""A benchmark run's own PostgreSQL database, Redis key prefix and temporary folder.

Runs never meet each other, the tests, or anything else on the same servers: the database is `bench_{kind}_{run}`,
every Redis key carries the prefix `{kind}{run}`, files go to a fresh temporary folder; `drop()` removes all three
(each step tried even if another failed). Used by bench/e2e.py, intake.py, intake_import.py and stats.py.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import redis

from rewards import migrate
from rewards.config import Settings
from rewards.db import make_engine


class PrivateRun:
    """One run's private database (created and migrated by `create_database`), key prefix and folder."""

    def __init__(self, kind: str, pg_url: str, redis_url: str) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.db = f"bench_{kind}_{self.run}"
        self.admin_dsn = pg_url  # the server's existing database, for CREATE/DROP DATABASE
        self.dsn = pg_url.rsplit("/", 1)[0] + "/" + self.db
        self.redis_url = redis_url
        self.prefix = f"{kind}{self.run}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-{self.run}-"))
        self.created = False

    @property
    def database_url(self) -> str:
        """The private database as the service's REWARDS_DATABASE_URL (SQLAlchemy with psycopg 3)."""
        return self.dsn.replace("postgresql://", "postgresql+psycopg://", 1)

    def settings(self) -> Settings:
        """Settings of the bench process's own container, on the private database, prefix and folder."""
        return Settings(
            database_url=self.database_url,
            redis_url=self.redis_url,
            leaderboard_key_prefix=self.prefix,
            data_dir=self.tmp,
            outbox_dir=self.tmp / "outbox",
        )

    def env(self) -> dict[str, str]:
        """The same as REWARDS_* variables, for a service or command the bench starts."""
        return {
            "REWARDS_DATABASE_URL": self.database_url,
            "REWARDS_REDIS_URL": self.redis_url,
            "REWARDS_LEADERBOARD_KEY_PREFIX": self.prefix,
            "REWARDS_DATA_DIR": str(self.tmp),
            "REWARDS_OUTBOX_DIR": str(self.tmp / "outbox"),
        }

    def command_env(self) -> dict[str, str]:
        """This process's environment with the run's REWARDS_* variables: for a `rewards` command the bench runs."""
        return {**os.environ, **self.env()}

    def admin(self, sql: str) -> None:
        """Run one statement on the admin database (CREATE/DROP DATABASE)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self) -> None:
        """Create the private database and bring it to the current schema (the migrations the service runs)."""
        self.admin(f'CREATE DATABASE "{self.db}"')
        self.created = True
        engine = make_engine(self.database_url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()

    def drop(self) -> int:
        """Unlink the run's keys, drop its database, remove its folder; return how many keys were unlinked."""
        try:
            return free_prefix(redis.Redis.from_url(self.redis_url), self.prefix)
        finally:
            try:
                if self.created:
                    self.admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            finally:
                shutil.rmtree(self.tmp, ignore_errors=True)


def free_prefix(client: redis.Redis, prefix: str) -> int:
    """UNLINK every key of a prefix (never DEL: big sorted sets would block the server); return the count."""
    batch: list[Any] = []
    freed = 0
    for key in client.scan_iter(match=f"*{prefix}*", count=10_000):
        batch.append(key)
        if len(batch) >= 1000:
            freed += int(client.unlink(*batch))
            batch = []
    if batch:
        freed += int(client.unlink(*batch))
    return freed
