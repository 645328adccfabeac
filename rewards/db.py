"""Declarative base, engine/session factory and the unit of work (commit once, at the edge)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Insert, MetaData, Result, create_engine, event, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from rewards.clock import to_utc
from rewards.errors import Unavailable
from rewards.logs import get_logger

log = get_logger("db")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores instants as naive UTC (portable across SQLite and PostgreSQL); returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to naive UTC before writing."""
        if value is None:
            return None
        return to_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return to_utc(value)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a created parent folder."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # no pre-ping: it is one more round trip on every checkout; a connection the server dropped fails its request
    # as Unavailable (503, retried by the caller) and the pool then replaces every connection older than it
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return the session factory every unit of work uses."""
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


class UnitOfWork:
    """One transaction; effects outside SQL (Redis, WeChat) are queued and run only after commit."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._after_commit: list[Callable[[], None]] = []
        # True for a batch (intake): queued history/audit rows are sent once, before COMMIT, not after each step
        self.defer_rows = False

    def step_done(self) -> None:
        """End of one use case: send its queued rows now, unless the batch sends them all before COMMIT."""
        if not self.defer_rows:
            flush_rows(self.session)

    def after_commit(self, effect: Callable[[], None]) -> None:
        """Queue an effect to run once the transaction has committed (it must be safe to repeat)."""
        self._after_commit.append(effect)

    def unconfirmed(self, exc: Exception) -> list[FailedEffect]:
        """The queued effects, as failed with `exc`: their transaction's commit is in doubt (empty when none)."""
        effects, self._after_commit = self._after_commit, []
        return [(effect, exc) for effect in effects]

    def run_after_commit(self) -> list[FailedEffect]:
        """Run queued effects; return (not raise) the ones that failed: the ledger is already committed."""
        effects, self._after_commit = self._after_commit, []
        return run_effects(effects)


Effect = Callable[[], None]
FailedEffect = tuple[Effect, Exception]


def run_effects(effects: Sequence[Effect]) -> list[FailedEffect]:
    """Run effects in order; collect the failures (derived state only: they can be retried or rebuilt)."""
    failures: list[FailedEffect] = []
    for effect in effects:
        try:
            effect()
        except Exception as exc:  # a Redis outage must not undo a committed award
            failures.append((effect, exc))
    return failures


def insert_or_ignore(session: Session, model: Any, values: dict[str, Any], conflict: Sequence[str]) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING on SQLite and PostgreSQL; return the new id, or None when the row existed.

    Concurrent writers of the same unique key never raise: exactly one inserts, the others see None.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(model).values(values).on_conflict_do_nothing(index_elements=list(conflict)).returning(model.id)
    return session.execute(stmt).scalar_one_or_none()


# -- rows written later, together --------------------------------------------------------------------------------

_PENDING = "rewards.pending_rows"  # session.info key: [(model, values), ...] not yet sent
COMMITTED_NOTES = "rewards.committed_notes"  # session.info key: [(kind, value), ...] counted once committed


def note_on_commit(session: Session, kind: str, value: str) -> None:
    """Record a fact written with bulk statements (no ORM object shows it) that counts once this transaction
    commits and is forgotten if it rolls back: the metrics' session listener reads these notes."""
    session.info.setdefault(COMMITTED_NOTES, []).append((kind, value))


MAX_CTE_ROWS = 8  # a few rows ride along as CTEs of the final INSERT; more go as an executemany (cheaper to compile)


def add_row(session: Session, model: Any, values: dict[str, Any]) -> None:
    """Queue an append-only row (history, audit): it is sent with the next `flush_rows`, in one statement per batch.

    Nothing in the transaction may read these rows before that flush; every unit of work flushes before commit.
    """
    session.info.setdefault(_PENDING, []).append((model, values))


def flush_rows(session: Session, final: Insert | None = None) -> Result[Any] | None:
    """Send the queued rows, then `final` (an INSERT, e.g. the ledger's), in as few round trips as possible.

    PostgreSQL, a few rows: one statement, each table's rows a data-modifying CTE of `final` (or of the last
    table's INSERT). SQLite (no DML in CTEs) with a `final`: `final` alone, the rows staying queued. Otherwise one
    executemany per table (SQLAlchemy sends it as multi-row INSERTs), then `final`. Returns `final`'s result.
    """
    if final is not None and session.get_bind().dialect.name != "postgresql":
        return session.execute(final)  # nothing to ride along with: the queued rows wait for the next flush
    pending: list[tuple[Any, dict[str, Any]]] = session.info.pop(_PENDING, [])
    groups: dict[Any, list[dict[str, Any]]] = {}
    for model, values in pending:
        groups.setdefault(model, []).append(values)
    chunks = list(groups.items())
    postgres = session.get_bind().dialect.name == "postgresql"
    if not postgres or len(pending) > MAX_CTE_ROWS or (final is None and len(chunks) < 2):
        # many rows (a batch's history): an executemany, compiled once and cached, sent as multi-row INSERTs
        for model, rows in groups.items():
            session.execute(insert(model), rows)
        return session.execute(final) if final is not None else None
    if final is None:  # a few rows of several tables (a refusal's history and audit line): one statement
        model, rows = chunks.pop()
        final = insert(model).values(rows)
    stmt = final
    for n, (model, rows) in enumerate(chunks):
        stmt = stmt.add_cte(insert(model).values(rows).cte(f"rows_{n}"))
    return session.execute(stmt)


@contextmanager
def savepoint(uow: UnitOfWork) -> Iterator[None]:
    """Run a step in a SAVEPOINT: on error its writes, queued rows and after-commit effects are all undone."""
    effects = len(uow._after_commit)
    # rows queued by earlier steps may be sent inside this step (riding along with its ledger INSERT): if the step
    # is rolled back they must be queued again, and the step's own rows dropped
    queued = list(uow.session.info.get(_PENDING, []))
    nested = uow.session.begin_nested()
    try:
        yield
        nested.commit()  # the step's queued rows stay queued: the unit of work sends them all before COMMIT
    except BaseException:
        uow.session.info[_PENDING] = queued
        if nested.is_active:
            nested.rollback()
        del uow._after_commit[effects:]
        raise


AfterCommitErrorHandler = Callable[[list[FailedEffect]], None]


@contextmanager
def unit_of_work(
    factory: sessionmaker[Session], on_effect_errors: AfterCommitErrorHandler | None = None
) -> Iterator[UnitOfWork]:
    """Open a transaction, commit once at the end (roll back on error), then run after-commit effects."""
    session = factory()
    uow = UnitOfWork(session)
    committing = False
    try:
        yield uow
        flush_rows(session)
        committing = True
        session.commit()
    except (OperationalError, DBAPIError) as exc:
        session.rollback()
        lost = isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False)
        if committing and lost and on_effect_errors is not None and (in_doubt := uow.unconfirmed(exc)):
            # the COMMIT's reply was lost: it may have landed, and the caller's retry is a no-op that queues nothing;
            # report its effects as failed so the boards are marked behind and the projector catches up at once
            on_effect_errors(in_doubt)
        if lost:
            raise Unavailable("the database is unavailable, please retry") from exc
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    failures = uow.run_after_commit()
    if failures and on_effect_errors is not None:
        on_effect_errors(failures)


class Database:
    """The SQL database: units of work (commit once, then after-commit effects) and read sessions.

    After-commit effects update derived state (the Redis boards); when one fails the ledger is committed all the
    same, and the handler set with `when_effects_fail` is told (the projector then catches the boards up from the
    ledger): nothing waits in memory.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = make_sessionmaker(engine)
        self._on_failures: AfterCommitErrorHandler | None = None

    def when_effects_fail(self, handler: AfterCommitErrorHandler) -> None:
        """Call `handler` with the after-commit effects that failed (they are derived state: never retried here)."""
        self._on_failures = handler

    @contextmanager
    def uow(self) -> Iterator[UnitOfWork]:
        """Open one transaction; commit once at the end, then run the after-commit effects."""
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

    def _effects_failed(self, failures: list[FailedEffect]) -> None:
        for _, exc in failures:
            log.warning("after-commit effect failed (the ledger is committed; the projector catches up): %r", exc)
        if self._on_failures is not None:
            self._on_failures(failures)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
