"""Declarative base, engine/session factory and the unit of work (commit once, at the edge)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Engine,
    Executable,
    Float,
    Integer,
    MetaData,
    Result,
    String,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    insert,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
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
        # True for a batch rolled back whole on any failure (a verdict batch's optimistic pass): a step's case changes
        # are queued UPDATEs the case shows at once (`add_update(show=True)`), sent with the rows before COMMIT
        self.queue_updates = False

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


def insert_or_ignore_object(
    session: Session, model: Any, values: dict[str, Any], conflict: Sequence[str]
) -> Any | None:
    """`insert_or_ignore` returning the new row as an ORM object (in the session, as if loaded), or None when the
    row existed: one statement where an INSERT and a SELECT were two."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(model).values(values).on_conflict_do_nothing(index_elements=list(conflict)).returning(model)
    return session.scalars(stmt).one_or_none()


# -- many rows in one statement ----------------------------------------------------------------------------------
#
# PostgreSQL: the rows as one JSON parameter, `INSERT … SELECT … FROM json_to_recordset(…)`: one short statement
# whatever the number of rows, so SQLAlchemy compiles it once and psycopg converts it once (a multi-row VALUES of a
# hundred rows is a new, long text every time, parsed placeholder by placeholder; array parameters are escaped
# element by element in Python), and the rows are encoded by the C JSON encoder. The record's columns are unsized
# types: the column's own assignment cast then refuses an over-long value as a single-row INSERT would. Elsewhere
# (SQLite), or for a column type not mapped here, an executemany as before.

_STATEMENTS: dict[tuple[Any, ...], Any] = {}  # (kind, table, columns, …) -> the statement built for it


def _record_type(column: Any) -> str | None:
    """The unsized PostgreSQL type a column's value is read as from JSON, or None when it is not one handled here."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return "timestamp"  # naive UTC, as UTCDateTime stores it
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, BigInteger):
        return "bigint"
    if isinstance(kind, Integer):
        return "integer"
    if isinstance(kind, String):  # Text too
        return "text"
    if isinstance(kind, Float):
        return "double precision"  # json.dumps writes a float's shortest round-trip form: the same double
    if isinstance(kind, JSON):
        return "json"  # the value nested as JSON, not as text holding JSON
    return None


_ISO: dict[datetime, str] = {}  # instant -> its UTC text: a batch's rows share a few instants (now, the events')


def _json_value(value: object) -> str:
    """JSON for the values json.dumps has no form for: instants, in UTC (a `timestamp` reads the date and time and
    ignores the offset, so the text must be UTC; a naive instant is UTC already, as UTCDateTime takes it)."""
    if isinstance(value, datetime):
        text = _ISO.get(value)  # equal instants (whatever their zone) share one entry and one UTC text
        if text is None:
            if len(_ISO) >= 4096:
                _ISO.clear()
            text = _ISO[value] = (value if value.tzinfo is None else value.astimezone(UTC)).isoformat()
        return text
    raise TypeError(f"{type(value).__name__} is not written through json_to_recordset")


def _record_columns(
    session: Session, table: Any, rows: Sequence[dict[str, Any]], *, insert: bool = True
) -> list[Any] | None:
    """The columns of `rows` when they can go as one JSON parameter (PostgreSQL, every row the same keys, handled
    types, no Python-side default left out: of an INSERT, or an UPDATE's onupdate), else None."""
    if session.get_bind().dialect.name != "postgresql" or not rows:
        return None
    keys = rows[0].keys()
    if any(row.keys() != keys for row in rows):
        return None
    columns = [table.c[k] for k in keys]
    if any(_record_type(c) is None for c in columns):
        return None
    if any((c.default if insert else c.onupdate) is not None and c.name not in keys and not c.primary_key
           for c in table.c):  # fmt: skip
        return None  # an omitted column's default is SQLAlchemy's to apply: the executemany does that
    return columns


def _recordset(columns: list[Any], param: str = "rows") -> str:
    definition = ", ".join(f"{c.name} {_record_type(c)}" for c in columns)
    return f"json_to_recordset(CAST(:{param} AS json)) AS v({definition})"


def _rows_param(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_json_value, check_circular=False)
    return {"rows": text}


def one_of(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(:values)`: one array parameter and the same statement text
    whatever the number of values (an expanding IN is rendered anew for each count, and psycopg converts a text of
    more than 50 placeholders anew every time). Text is compared as text (no sized cast that would truncate)."""
    if session.get_bind().dialect.name != "postgresql":
        return cast(ColumnElement[bool], column.in_(values))
    element = Text() if isinstance(column.type, String) else column.type
    return cast(ColumnElement[bool], column == any_(bindparam(None, list(values), type_=ARRAY(element))))


def insert_rows(
    session: Session,
    table: Any,
    rows: Sequence[dict[str, Any]],
    *,
    conflict: Sequence[str] = (),
    returning: Sequence[str] = (),
    with_queued: bool = False,
) -> Result[Any] | None:
    """INSERT `rows` (dicts by column name) into `table` in one statement; `conflict`: ON CONFLICT (these columns)
    DO NOTHING; `returning`: the columns returned for each row inserted (typed as the table's). Returns the result
    when `returning`, else None.

    with_queued: the rows and updates queued for `flush_rows` are sent too, before these rows or (PostgreSQL, every
    one of them as JSON) as data-modifying CTEs of the same statement (a batch's last write before COMMIT)."""
    columns = _record_columns(session, table, rows)
    pending: list[tuple[Any, dict[str, Any]]] = session.info.get(_PENDING, []) if with_queued else []
    bulk = _bulk_rows(session, pending) if pending and columns is not None else None
    if pending and bulk is None:
        flush_rows(session)  # the queued rows on their own first
    if columns is None:
        dialect_insert: Any = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = dialect_insert(table)
        if conflict:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
        if returning:
            stmt = stmt.returning(*(table.c[c] for c in returning))
        result = session.execute(stmt, list(rows))
        return result if returning else None
    specs, binds, shape = bulk if bulk is not None else ([], {}, ())
    key = ("insert", table.name, tuple(c.name for c in columns), tuple(conflict), tuple(returning), shape)
    text_stmt = _STATEMENTS.get(key)
    if text_stmt is None:
        sql = _insert_sql(table, columns)
        if conflict:
            sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
        sql = _with_ctes(_bulk_sql(specs), sql)
        text_stmt = text(sql)
        if returning:
            text_stmt = text(f"{sql} RETURNING {', '.join(returning)}").columns(*(table.c[c] for c in returning))
        _STATEMENTS[key] = text_stmt
    result = session.execute(text_stmt, binds | _rows_param(rows))
    if bulk is not None:
        _sent(session.info.pop(_PENDING))
    return result if returning else None


def update_rows(session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """UPDATE `table` by primary key from `rows` (dicts by column name, each with the primary key) in one
    statement (PostgreSQL: `UPDATE … FROM json_to_recordset(…)`; elsewhere an executemany)."""
    pk = table.primary_key.columns[0]
    columns = _record_columns(session, table, rows, insert=False)
    if columns is None:
        session.execute(update(table).where(pk == bindparam(f"b_{pk.name}")), [_rename(row, pk.name) for row in rows])
        return
    key = ("update", table.name, tuple(c.name for c in columns))
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = text(_update_sql(table, columns))
    session.execute(stmt, _rows_param(rows))


def _update_sql(table: Any, columns: list[Any], param: str = "rows") -> str:
    pk = table.primary_key.columns[0]
    sets = ", ".join(f"{c.name} = v.{c.name}" for c in columns if c is not pk)
    match = f"{table.name}.{pk.name} = v.{pk.name}"
    return f"UPDATE {table.name} SET {sets} FROM {_recordset(columns, param)} WHERE {match}"


def _insert_sql(table: Any, columns: list[Any], param: str = "rows") -> str:
    names = ", ".join(c.name for c in columns)
    return f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {_recordset(columns, param)}"


def _rename(row: dict[str, Any], pk: str) -> dict[str, Any]:
    """A row for the executemany UPDATE: its primary key bound as b_<pk> (a column's own name is the SET value)."""
    return {(f"b_{k}" if k == pk else k): v for k, v in row.items()}


# -- rows written later, together --------------------------------------------------------------------------------

_PENDING = "rewards.pending_rows"  # session.info key: [(model, values), ...] not yet sent
COMMITTED_NOTES = "rewards.committed_notes"  # session.info key: [(kind, value), ...] counted once committed
# session.info key: True while a batch (intake) sends its queued rows only before COMMIT, not with each `final`
# (riding along as CTEs, every statement differs and is compiled anew: no cache key)
DEFER_ROWS = "rewards.defer_rows"


def note_on_commit(session: Session, kind: str, value: str) -> None:
    """Record a fact written with bulk statements (no ORM object shows it) that counts once this transaction
    commits and is forgotten if it rolls back: the metrics' session listener reads these notes."""
    session.info.setdefault(COMMITTED_NOTES, []).append((kind, value))


MAX_CTE_ROWS = 8  # a few rows ride along as CTEs of the final statement; more go as an executemany


def add_row(session: Session, model: Any, values: dict[str, Any]) -> None:
    """Queue an append-only row (history, audit): it is sent with the next `flush_rows`, in one statement per batch.

    Nothing in the transaction may read these rows before that flush; every unit of work flushes before commit.
    """
    session.info.setdefault(_PENDING, []).append((model, values))


@dataclass(frozen=True)
class _Update:
    """A queued UPDATE of one loaded ORM object's columns (see `add_update`)."""

    obj: Base


def add_update(session: Session, obj: Base, values: dict[str, Any], *, show: bool = False) -> None:
    """Queue an UPDATE of a loaded ORM object's columns, sent with the next `flush_rows` (a CTE of its statement,
    not a unit-of-work flush of its own); once sent, the object shows the values as loaded (not dirty).

    Until then the object shows its old values, and nothing may change these attributes through the ORM (its own
    UPDATE would be overwritten): a batch that changes an object again later sets attributes instead.

    show=True: the object shows the values at once (as loaded), and a later `add_update` of the same object in the
    transaction changes them again (the UPDATEs are merged, the later value wins). Only for a transaction that is
    rolled back whole if anything in it fails (a verdict batch's optimistic pass): a SAVEPOINT's rollback would not
    give the object its old values back.
    """
    if show:
        for column, value in values.items():
            set_committed_value(obj, column, value)
    session.info.setdefault(_PENDING, []).append((_Update(obj), values))


def flush_rows(
    session: Session, final: Executable | None = None, params: dict[str, Any] | None = None
) -> Result[Any] | None:
    """Send the queued rows and updates, then `final` (an INSERT, e.g. the ledger's, with its `params`), in as few
    round trips as possible.

    PostgreSQL, a few rows: one statement, each row a data-modifying CTE of `final` (or of the last row's statement),
    built once per shape and cached with its compiled form (a reused `final` with bound `params` is part of the
    shape). SQLite (no DML in CTEs) with a `final`: `final` alone, the rows staying queued. Otherwise one
    executemany per table (SQLAlchemy sends it as multi-row INSERTs), then `final`. Returns `final`'s result.
    """
    if final is not None and (session.get_bind().dialect.name != "postgresql" or session.info.get(DEFER_ROWS)):
        return session.execute(final, params)  # nothing to ride along with: the queued rows wait for the next flush
    pending: list[tuple[Any, dict[str, Any]]] = session.info.pop(_PENDING, [])
    if not pending:
        return session.execute(final, params) if final is not None else None
    groups: dict[Any, list[dict[str, Any]]] = {}
    for target, values in pending:
        groups.setdefault(target, []).append(values)
    postgres = session.get_bind().dialect.name == "postgresql"
    bulk = _bulk_rows(session, pending) if postgres and len(pending) > MAX_CTE_ROWS else None
    if bulk is not None:  # many rows (a batch's): one statement, a JSON parameter per table and shape
        specs, binds, shape = bulk
        stmt = _STATEMENTS.get(shape)
        if stmt is None:
            parts = _bulk_sql(specs)
            stmt = _STATEMENTS[shape] = text(_with_ctes(parts[:-1], parts[-1]))
        session.execute(stmt, binds)
        result = session.execute(final, params) if final is not None else None
    elif not postgres or len(pending) > MAX_CTE_ROWS or (final is None and len(groups) < 2):
        # many rows of a shape not handled as JSON: an executemany, compiled once and cached
        for target, values in pending:
            if isinstance(target, _Update):
                session.execute(_update_statement(_table(target.obj), values, "v_"), _update_params(target, values))
        for target, rows in groups.items():
            if not isinstance(target, _Update):
                insert_rows(session, _table(target), rows)
        result = session.execute(final, params) if final is not None else None
    else:
        stmt = _ride_along(final, pending, reusable=final is None or params is not None)
        binds = dict(params or {})
        for n, (target, values) in enumerate(pending):
            binds |= {f"r{n}_{column}": value for column, value in values.items()}
            if isinstance(target, _Update):
                binds[f"r{n}_pk"] = _primary_key(target.obj)
        result = session.execute(stmt, binds)
    _sent(pending)
    return result


def _sent(pending: list[tuple[Any, dict[str, Any]]]) -> None:
    """The queued rows and updates were sent: the updated objects show their new values as loaded."""
    for target, values in pending:
        if isinstance(target, _Update):
            for column, value in values.items():
                set_committed_value(target.obj, column, value)


def _bulk_rows(
    session: Session, pending: list[tuple[Any, dict[str, Any]]]
) -> tuple[list[tuple[str, Any, list[Any]]], dict[str, str], tuple[Any, ...]] | None:
    """The queued rows and updates grouped for statements over JSON parameters (PostgreSQL): for each table and
    shape (the columns given) an `INSERT … SELECT` or `UPDATE … FROM` over one parameter (`_bulk_sql`); returns the
    groups (kind, table, columns), the parameters and the shape (a cache key, in a canonical order), or None when a
    column cannot go as JSON. An object's queued UPDATEs are merged first (the later value wins): a row must not be
    updated twice in one statement, where they go together (as CTEs of the last, `_with_ctes`). The rows' foreign
    keys must be rows that exist before that statement."""
    updates: dict[int, tuple[Any, dict[str, Any]]] = {}  # id(obj) -> (obj, its merged values), first queued first
    inserts: dict[tuple[Any, tuple[str, ...]], list[dict[str, Any]]] = {}
    for target, values in pending:
        if isinstance(target, _Update):
            merged = updates.setdefault(id(target.obj), (target.obj, {}))[1]
            merged.update(values)
        else:
            inserts.setdefault((_table(target), tuple(values)), []).append(values)
    groups: dict[tuple[str, Any, tuple[str, ...]], list[dict[str, Any]]] = {}
    for obj, values in updates.values():
        table = _table(obj)
        pk = table.primary_key.columns[0].name
        groups.setdefault(("update", table, tuple(values)), []).append({pk: _primary_key(obj), **values})
    groups |= {("insert", table, keys): rows for (table, keys), rows in inserts.items()}
    specs: list[tuple[str, Any, list[Any]]] = []
    binds: dict[str, str] = {}
    # one order whatever the order the rows were queued in (one snapshot: the CTEs' order does not matter)
    for kind, table, keys in sorted(groups, key=lambda g: (g[0], g[1].name, g[2])):
        rows = groups[(kind, table, keys)]
        columns = _record_columns(session, table, rows, insert=kind == "insert")
        if columns is None:
            return None
        binds[f"g{len(specs)}"] = _rows_param(rows)["rows"]
        specs.append((kind, table, columns))
    return specs, binds, ("bulk", *((kind, table.name, tuple(c.name for c in cols)) for kind, table, cols in specs))


def _bulk_sql(specs: list[tuple[str, Any, list[Any]]]) -> list[str]:
    """The statements of `_bulk_rows`' groups, each over its parameter g<n> (built once per shape, on a cache miss)."""
    return [(_insert_sql if kind == "insert" else _update_sql)(table, columns, f"g{n}")
            for n, (kind, table, columns) in enumerate(specs)]  # fmt: skip


def _with_ctes(ctes: Sequence[str], sql: str) -> str:
    """`sql` with the statements `ctes` as its data-modifying CTEs (PostgreSQL runs them all, in one snapshot)."""
    return f"WITH {', '.join(f'w{n} AS ({cte})' for n, cte in enumerate(ctes))} {sql}" if ctes else sql


_SHAPES: dict[tuple[Any, ...], tuple[Executable, Executable | None]] = {}  # shape -> (statement, its final)
_MAX_SHAPES = 512  # a bound on the cache: shapes are few (a flow's rows), a new kind of batch may add some


def _ride_along(final: Executable | None, pending: list[tuple[Any, dict[str, Any]]], *, reusable: bool) -> Executable:
    """The one statement sending `pending` as CTEs of `final`; bind names `r{n}_{column}` (and `r{n}_pk`).

    Built once per shape: a reused statement keeps its cache key, so SQLAlchemy compiles it once (a multi-row
    VALUES has no cache key and would be compiled on every call: each row gets its own CTE instead)."""
    shape = (id(final), tuple((_target_key(t), tuple(values)) for t, values in pending)) if reusable else None
    cached = _SHAPES.get(shape) if shape is not None else None
    if cached is not None:
        return cached[0]
    rows: list[Executable] = []
    for n, (target, values) in enumerate(pending):
        if isinstance(target, _Update):
            rows.append(_update_statement(_table(target.obj), values, f"r{n}_"))
        else:
            table = _table(target)
            rows.append(insert(table).values({c: bindparam(f"r{n}_{c}", type_=table.c[c].type) for c in values}))
    stmt = final if final is not None else rows.pop()
    for n, row in enumerate(rows):
        stmt = stmt.add_cte(row.cte(f"rows_{n}"))  # type: ignore[attr-defined]
    if shape is not None and len(_SHAPES) < _MAX_SHAPES:
        _SHAPES[shape] = (stmt, final)  # holding `final` keeps its id from being reused by another statement
    return stmt


def _update_statement(table: Any, values: dict[str, Any], prefix: str) -> Executable:
    pk = table.primary_key.columns[0]
    sets = {c: bindparam(f"{prefix}{c}", type_=table.c[c].type) for c in values}
    return update(table).where(pk == bindparam(f"{prefix}pk", type_=pk.type)).values(sets)


def _update_params(target: _Update, values: dict[str, Any]) -> dict[str, Any]:
    return {"v_pk": _primary_key(target.obj)} | {f"v_{c}": v for c, v in values.items()}


def _table(model: Any) -> Any:
    """The Core table of an ORM model (or of an ORM object): Core statements skip the ORM's bulk-insert layer."""
    return model.__table__


def _target_key(target: Any) -> Any:
    return ("update", _table(target.obj)) if isinstance(target, _Update) else ("insert", _table(target))


def _primary_key(obj: Any) -> Any:
    return obj.__mapper__.primary_key_from_instance(obj)[0]


RETRYABLE_SQLSTATES = ("40P01", "40001")  # deadlock_detected, serialization_failure


def retryable(exc: OperationalError) -> bool:
    """Whether a database error chose this transaction as a deadlock or serialization victim (the step can run
    again after its SAVEPOINT is rolled back), not a lost connection."""
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


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
