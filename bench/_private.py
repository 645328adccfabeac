"""A benchmark run's own PostgreSQL database, Redis key prefix and temporary folder.

Runs never meet each other, the tests, or anything else on the same servers: the database is `bench_{kind}_{run}`,
every Redis key carries the prefix `{kind}{run}`, files go to a fresh temporary folder; `drop()` removes all three
(each step tried even if another failed). Used by bench/e2e.py, intake.py, intake_import.py and stats.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
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
        self.cache_lock: CacheLock | None = None

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

    def lock_cache(self) -> str:
        """Hold the run's database files in the page cache (`CacheLock`) until `drop()`; say what was done."""
        if self.cache_lock is None:
            self.cache_lock, said = CacheLock.start(self.dsn, self.tmp / "vmtouch.pid")
            return said
        return self.cache_lock.said

    def drop(self) -> int:
        """Unlink the run's keys, drop its database, remove its folder; return how many keys were unlinked."""
        if self.cache_lock is not None:
            self.cache_lock.stop()
            self.cache_lock = None
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


LOCK_SECONDS = 600  # reading a 4.4M database's 2.5 GiB into the cache takes seconds; a stuck disk gives up here


class CacheLock:
    """A database's files locked in the page cache by Debian's `vmtouch -l` (a daemon), as a dedicated database
    server keeps its working set in memory.

    Why: the machines this bench runs on page out file cache that is not read several times every few seconds (a
    DAMON `pageout` scheme of the kernel, thread `kdamond`: pages idle for 60 s, up to 128 MB/s). At 4.4M citizens
    the rows a verdict or an intake batch touches (a random reporter's citizen row, index leaves of the ledger and
    the cases) are read too rarely to stay, so without the lock those phases measure the disk, not the code, and
    differently from run to run. Locked pages are never reclaimed; pages written after the lock (new ledger rows)
    are in the cache anyway. Only possible when the database's files are on this machine and readable, and
    vmtouch is installed (`apt-get install vmtouch`); otherwise the bench says why and runs unlocked.
    """

    def __init__(self, pidfile: Path, size: int) -> None:
        self.pidfile = pidfile
        self.said = f"database files locked in the page cache (vmtouch -l): {size / 2**30:.2f} GiB"

    @classmethod
    def start(cls, dsn: str, pidfile: Path) -> tuple[CacheLock | None, str]:
        """Lock the files of the database `dsn` names; return the lock (None if not possible) and what was done."""
        vmtouch = shutil.which("vmtouch")
        if vmtouch is None:
            return None, "database files not locked in the page cache: vmtouch is not installed"
        try:
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    "SELECT current_setting('data_directory'), (SELECT oid FROM pg_database"
                    " WHERE datname = current_database()), pg_relation_filepath('pg_class')"
                ).fetchone()
        except psycopg.Error as exc:
            return None, f"database files not locked in the page cache: {str(exc).strip().splitlines()[0]}"
        if row is None:
            return None, "database files not locked in the page cache: the server did not say where they are"
        data_dir, oid, catalog = row
        directory = Path(data_dir) / "base" / str(oid)
        try:
            if not (Path(data_dir) / catalog).is_file():  # a file of this database, always there
                return None, f"database files not locked in the page cache: {directory} is not on this machine"
            size = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
        except OSError as exc:  # the server's data directory, readable by its own user only (not running as root)
            return None, f"database files not locked in the page cache: {exc}"
        # -d: a daemon that keeps the lock; -w: return once every page is locked; -m: PostgreSQL's 1 GiB segments
        # its output goes to a file: the daemon keeps the descriptors open, so a pipe would never reach EOF
        log = pidfile.with_suffix(".log")
        with log.open("w") as out:
            try:
                done = subprocess.run(
                    [vmtouch, "-q", "-l", "-d", "-w", "-m", "4G", "-P", str(pidfile), str(directory)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=LOCK_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired:  # a disk that cannot read the files in time: run unlocked
                cls(pidfile, size).stop()
                return None, f"database files not locked in the page cache: not locked within {LOCK_SECONDS} s"
        if done.returncode != 0:
            why = log.read_text().strip() or f"vmtouch exited {done.returncode}"
            return None, f"database files not locked in the page cache: {why}"
        lock = cls(pidfile, size)
        return lock, lock.said

    def stop(self) -> None:
        """End the daemon (the pages become ordinary cache again): SIGTERM, then SIGKILL after 5 s."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):  # no daemon was started
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            for _ in range(100):
                time.sleep(0.05)
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
