"""Rebuild every board from the SQL ledger into a new generation and swap it in atomically.

1. Take the rebuild lock; allocate generation N (INCR) and mark it as the shadow being built.
2. Stream the citizens with their ledger ordered by (citizen, entry) in chunks; fold each citizen (scores.fold)
   and pipeline their summary (with the profile a standing shows), openid and board placements into generation
   N's keys. Live readers and writers keep using the current
   generation meanwhile: ranks never disappear.
3. Swap: one SET of the generation pointer (scripts.SWAP). Every script checks the pointer, so a reader sees the
   old boards or the new ones, whole; nothing is renamed and no big key is freed synchronously.
4. Catch up: entries committed while the stream ran may have been applied to the old generation. Re-apply every
   entry with id > (largest id read - CATCH_UP_WINDOW) through the apply-once script: those already in the new
   generation are skipped by their entry id, the rest land. The window covers transactions that held a smaller
   id but committed after the stream's snapshot (in flight at the time: far fewer than CATCH_UP_WINDOW).
5. Free the old generation with UNLINK (its keys found by SCAN, so strays are freed too), then drop the lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import Any

import hiredis
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rewards.cases.models import Citizen, CitizenChange
from rewards.db import Database
from rewards.errors import Conflict
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import Boards
from rewards.locks import Lease
from rewards.logs import get_logger
from rewards.scoring.ledger import LedgerEntry, facts_for_entries
from rewards.scoring.rules import is_eligible

log = get_logger("leaderboard.rebuild")

CHUNK = 2000  # citizens per Redis pipeline
FETCH = 5000  # ledger rows per database fetch
CATCH_UP_WINDOW = 10_000
LOCK_TTL_SECONDS = 10 * 60  # renewed after every chunk
Progress = Callable[[int, int], None]  # (entries done, entries in total)


class RebuildRunning(Conflict):
    """Another rebuild holds the lock."""

    code = "rebuild_running"


@dataclass(frozen=True)
class CitizenLedger:
    """One citizen's ledger lines (none for a citizen without points) with the profile their boards depend on."""

    citizen_id: int
    district: str | None
    eligible: bool
    lines: list[scores.Line]
    profile: scores.Profile | None = None  # what a standing shows of the citizen (streamed with the ledger)


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild did."""

    generation: int
    previous: int
    citizens: int
    entries: int
    boards: int
    caught_up: int


def count_entries(session: Session) -> int:
    """Return the number of ledger entries."""
    return int(session.execute(select(func.count(LedgerEntry.id))).scalar_one())


def last_citizen_change(session: Session) -> int:
    """Return the id of the newest citizen change (0: none)."""
    return int(session.execute(select(func.coalesce(func.max(CitizenChange.id), 0))).scalar_one())


def stream_ledger(session: Session, citizen_ids: Iterable[int] | None = None) -> Iterator[CitizenLedger]:
    """Yield every citizen (ascending id) with their ledger lines, streamed in chunks; optionally only some.

    Citizens without a ledger line come too (no lines): Redis keeps every citizen's profile for the standing.
    """
    stmt = (
        select(
            Citizen.id,
            LedgerEntry.id,
            LedgerEntry.points,
            LedgerEntry.week,
            LedgerEntry.created_at,
            Citizen.district,
            Citizen.verified,
            Citizen.banned,
            Citizen.openid,
            Citizen.name,
            Citizen.phone,
        )
        .outerjoin(LedgerEntry, LedgerEntry.citizen_id == Citizen.id)
        .order_by(Citizen.id, LedgerEntry.id)
    )
    if citizen_ids is not None:
        stmt = stmt.where(Citizen.id.in_(list(citizen_ids)))
    current: CitizenLedger | None = None
    # Core execution, not the ORM's: ORM row loading cost ~15% of a 4.4M-citizen rebuild's CPU (bench/e2e.py)
    for row in session.connection().execute(stmt.execution_options(yield_per=FETCH)):
        cid, entry_id, points, week, created_at, district, verified, banned, openid, name, phone = row
        if current is None or current.citizen_id != cid:
            if current is not None:
                yield current
            eligible = is_eligible(verified, banned)
            profile = scores.profile_of(openid, name, phone, district, eligible, banned)
            current = CitizenLedger(cid, district, eligible, [], profile)
        if entry_id is not None:
            current.lines.append(scores.Line(entry_id, points, week, created_at))
    if current is not None:
        yield current


def write_generation(
    client: redis.Redis,
    prefix: str,
    gen: int,
    citizens: Iterable[CitizenLedger],
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Write the folded summaries and placements of citizens into a generation; return (citizens, entries, max id).

    Also writes the generation's board registry. `on_chunk(entries)` runs after each pipelined chunk is written.
    A helper thread writes one chunk while the next is streamed and folded, so Python's work and Redis's overlap
    (a quarter less wall time at 1M citizens, bench/e2e.py); at most one chunk is in flight.
    """
    updated: dict[str, int] = {}
    n_citizens = n_entries = max_id = 0
    commands: list[tuple[Any, ...]] = []
    boards: dict[str, dict[str, int]] = {}
    pending = pending_entries = 0
    in_flight: tuple[Future[None], int] | None = None  # the chunk being written, and its entry count
    openids: list[str] = []  # openid, member, ... of the chunk: one HSET per chunk

    def settle() -> None:
        nonlocal in_flight
        if in_flight is not None:
            future, entries = in_flight
            in_flight = None
            future.result()  # a failed write raises here
            if on_chunk is not None:
                on_chunk(entries)

    def flush(writer: ThreadPoolExecutor) -> None:
        nonlocal boards, commands, pending, pending_entries, in_flight, openids
        if openids:
            commands.append(("HSET", openids_key, *openids))
            openids = []
        for name, members in boards.items():
            scored = chain.from_iterable(zip(members.values(), members.keys(), strict=True))  # score, member, ...
            commands.append(("ZADD", keys.board_key(prefix, gen, name), *scored))
        settle()
        if commands:
            in_flight = writer.submit(send_pipelined, client, commands), pending_entries
        boards, commands, pending, pending_entries = {}, [], 0, 0

    base = keys.base(prefix, gen)
    openids_key = keys.openids_key(prefix, gen)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-writer") as writer:
        for c in citizens:
            summary = scores.fold(c.lines, c.district, c.eligible)
            m = keys.member(c.citizen_id)
            fields = scores.summary_fields(summary)
            if c.profile is not None:
                fields.update(scores.profile_fields(c.profile))
                openids += (c.profile.openid, m)
            commands.append(("HSET", base + "c:" + m, *chain.from_iterable(fields.items())))
            for name, score, tick in scores.placed(summary):
                boards.setdefault(name, {})[m] = score
                if tick > updated.get(name, -1):
                    updated[name] = tick
            n_citizens += 1
            n_entries += len(c.lines)
            pending += 1
            pending_entries += len(c.lines)
            max_id = max(max_id, max((line.entry_id for line in c.lines), default=0))
            if pending >= CHUNK:
                flush(writer)
        flush(writer)
        settle()
    if updated:
        client.hset(keys.registry_key(prefix, gen), mapping=updated)  # type: ignore[arg-type]
    return n_citizens, n_entries, max_id


# Connections that speak RESP over a real socket; anything else (fakeredis, Sentinel-managed) takes the pipeline.
_PLAIN_CONNECTIONS = (redis.Connection, redis.UnixDomainSocketConnection, redis.SSLConnection)


def send_pipelined(client: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> None:
    """Send commands in one round trip, as a pipeline does, and raise the first error reply after reading all.

    redis-py's pipeline walks every argument in Python before hiredis packs it; a rebuild sends ~16 arguments per
    citizen summary and 2 per board member, and that walk was ~30% of a 4.4M-citizen rebuild's CPU (py-spy, see
    docs/benchmarks.md). On a plain connection hiredis packs the commands directly instead; the pipeline's retry
    policy applies (the commands are idempotent: HSET and ZADD of fixed values).
    """
    pool = client.connection_pool
    if getattr(pool, "connection_class", None) not in _PLAIN_CONNECTIONS:
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        pipe.execute()
        return
    payload = [b"".join(hiredis.pack_command(command) for command in commands)]
    conn = pool.get_connection()

    def send() -> redis.ResponseError | None:
        conn.send_packed_command(payload)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        first: redis.ResponseError | None = None
        for _ in commands:
            try:
                conn.read_response()
            except redis.ResponseError as exc:  # that reply was consumed: read the rest, raise after the last one
                first = first or exc
        return first

    try:
        error = conn.retry.call_with_retry(send, lambda _exc: conn.disconnect())  # type: ignore[no-untyped-call]
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]  # replies may be left unread: never reuse it as it is
        raise
    finally:
        pool.release(conn)
    if error is not None:
        raise error


def free_generation(client: redis.Redis, prefix: str, gen: int) -> None:
    """UNLINK every key of a generation (never DEL: a big sorted set would block Redis while it is freed)."""
    batch: list[str] = []
    for key in client.scan_iter(match=keys.generation_pattern(prefix, gen), count=10_000):
        batch.append(key)
        if len(batch) >= 1000:
            client.unlink(*batch)
            batch = []
    if batch:
        client.unlink(*batch)


def rebuild(db: Database, boards: Boards, progress: Progress | None = None) -> RebuildReport:
    """Rebuild every board from the ledger and swap it in atomically; raise RebuildRunning if one is running."""
    client, prefix = boards.redis, boards.prefix
    lock = Lease(client, keys.lock_key(prefix), LOCK_TTL_SECONDS)
    if not lock.acquire():
        raise RebuildRunning("a rebuild of the leaderboards is already running")
    boards.breaker.success()  # Redis just answered (the lease): whatever failed before, it is up now
    try:
        boards.forget_generation()  # the pointer may have vanished with a flushed Redis: read it afresh
        abandoned = client.get(keys.shadow_key(prefix))
        if abandoned is not None and int(abandoned) != boards.generation(fresh=True):
            free_generation(client, prefix, int(abandoned))  # a rebuild that died before its swap
        gen = int(client.incr(keys.genseq_key(prefix)))
        client.set(keys.shadow_key(prefix), gen)
        with db.read() as session:
            total = count_entries(session)
            changes = last_citizen_change(session)
            done = 0

            def on_chunk(entries: int) -> None:
                nonlocal done
                done += entries
                lock.renew()  # the lease runs for LOCK_TTL_SECONDS from the last chunk
                if progress is not None:
                    progress(done, max(total, done))

            n_citizens, n_entries, max_id = write_generation(client, prefix, gen, stream_ledger(session), on_chunk)
        n_boards = int(client.hlen(keys.registry_key(prefix, gen)))
        client.set(keys.high_water_key(prefix, gen), max_id)
        client.set(keys.changes_key(prefix, gen), changes)  # citizen changes read with the ledger are in
        previous = int(boards.scripts.swap(keys=[keys.gen_key(prefix), keys.shadow_key(prefix)], args=[gen]))
        boards.forget_generation()
        boards.generation(fresh=True)
        caught_up = catch_up(db, boards, max_id - CATCH_UP_WINDOW)
        if previous != gen:
            free_generation(client, prefix, previous)
        log.info("boards rebuilt: generation %s, %s citizens, %s entries", gen, n_citizens, n_entries)
        return RebuildReport(gen, previous, n_citizens, n_entries, n_boards, caught_up)
    finally:
        if not lock.release():  # expired during a very slow rebuild: nothing of ours left to release
            log.warning("the rebuild lock had expired before it was released")


def catch_up(db: Database, boards: Boards, after_id: int) -> int:
    """Re-apply ledger entries with id > after_id through the apply-once script; return how many were read."""
    count = 0
    last = after_id
    while True:
        with db.read() as session:
            entries = session.scalars(
                select(LedgerEntry).where(LedgerEntry.id > last).order_by(LedgerEntry.id).limit(FETCH)
            ).all()
            if not entries:
                return count
            boards.apply(facts_for_entries(session, entries))
        count += len(entries)
        last = entries[-1].id


def rebuild_if_empty(db: Database, boards: Boards) -> RebuildReport | None:
    """Rebuild when Redis holds no boards (first start, a new embedded Redis, or a flushed server); else nothing."""
    if boards.is_built():
        return None
    try:
        return rebuild(db, boards)
    except RebuildRunning:
        log.info("another process is rebuilding the boards")
        return None
