"""Rebuild every board from the SQL ledger into a new generation and swap it in atomically.

1. Take the rebuild lock; allocate generation N (INCR) and mark it as the shadow being built.
2. Stream the citizens with their ledger ordered by (citizen, entry) in chunks; fold each citizen (fold_row, the
   fast twin of scores.fold + summary_fields + profile_fields, tests compare them) and pipeline their summary
   (with the profile a standing shows) and openid into generation N's keys; then write the board placements
   gathered meanwhile, each scope in score order (Placements). Live readers and writers keep using the current
   generation meanwhile: ranks never disappear.
3. Swap: one SET of the generation pointer (scripts.SWAP). Every script checks the pointer, so a reader sees the
   old boards or the new ones, whole; nothing is renamed and no big key is freed synchronously. The same script
   sets the catch-up marker (keys.catchup_key): until step 4 is done a standing is answered from the ledger (stale)
   rather than from new boards that may miss what was committed while the stream ran.
4. Catch up: entries committed while the stream ran may have been applied to the old generation. Re-apply every
   entry with id > (largest id read - CATCH_UP_WINDOW) through the apply-once script: those already in the new
   generation are skipped by their entry id, the rest land. The window covers transactions that held a smaller
   id but committed after the stream's snapshot (in flight at the time: far fewer than CATCH_UP_WINDOW). Then the
   marker is cleared; a rebuild that died before that leaves it, and the projector's next pass finishes the
   catch-up (`finish_catch_up`).
5. Free the old generation with UNLINK (its keys found by SCAN, so strays are freed too), then drop the lock.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import hiredis
import redis
from sqlalchemy import BigInteger, ColumnElement, Select, func, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute, Session

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

CHUNK = 2000  # citizens per Redis pipeline while the ledger streams
PLACEMENTS_CHUNK = 4000  # board placements per Redis pipeline once it has ended (each on 1-3 boards)
PAIRS = 1000  # members per ZADD, fields per HSET of openids: growing a big key makes each cost ~10x (_commands)
IN_FLIGHT = 3  # chunks written at once (one writer thread and connection each) while the next is folded
FETCH = 5000  # ledger rows per database fetch
CATCH_UP_WINDOW = 10_000
SCAN_COUNT = 1000  # keyspace slots per SCAN while freeing a generation
UNLINK_BATCH = 1000  # keys per UNLINK
LOCK_TTL_SECONDS = 10 * 60
LOCK_RENEW_SECONDS = 10.0  # renewed after a chunk when this long has passed: a renewal waits behind Redis's queue
Progress = Callable[[int, int], None]  # (steps done, in total): entries streamed, then board placements written


class RebuildRunning(Conflict):
    """Another rebuild holds the lock."""

    code = "rebuild_running"


class RebuildLeaseLost(RebuildRunning):
    """The rebuild's lease expired before it was renewed: another rebuild may hold it (and would free this one's
    unfinished generation as abandoned), so this one stops before its swap."""

    code = "rebuild_lease_lost"


def _keep(lock: Lease) -> None:
    if not lock.renew():
        raise RebuildLeaseLost("the rebuild's lease expired before it was renewed: stopped before the swap")


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


def _citizens_with_ledger(reached: ColumnElement[Any] | InstrumentedAttribute[Any]) -> Select[Any]:
    """Every citizen left-joined with their ledger lines, ordered by (citizen, entry): the rebuild's one query.

    `reached` is the entry's created_at as the caller reads it (the datetime, or PostgreSQL's tick of it)."""
    return (
        select(
            Citizen.id,
            LedgerEntry.id,
            LedgerEntry.points,
            LedgerEntry.week,
            reached,
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


def stream_ledger(session: Session, citizen_ids: Iterable[int] | None = None) -> Iterator[CitizenLedger]:
    """Yield every citizen (ascending id) with their ledger lines, streamed in chunks; optionally only some.

    Citizens without a ledger line come too (no lines): Redis keeps every citizen's profile for the standing.
    """
    stmt = _citizens_with_ledger(LedgerEntry.created_at)
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


# One citizen as the rebuild writes them: (citizen id, district ("" when none), eligible, what a standing shows of
# them (scores.Profile's openid, masked name, banned; openid None: no profile), ledger lines as
# (entry id, points, week, tick) in ascending entry id). Plain tuples: a dataclass per citizen costs ~1 µs.
Entry = tuple[int, int, str, int]
CitizenRow = tuple[int, str, bool, str | None, str, bool, list[Entry]]
Placed = tuple[int, int, int]  # a board placement as the boards are written: (score, citizen id, group id)

# created_at (naive UTC) -> whole seconds from scores.EPOCH, truncated as ranking.reach_second does
_TICK_SQL = f"floor(extract(epoch FROM {{}}))::bigint - {int(scores.EPOCH.timestamp())}"


def stream_rows(session: Session) -> Iterator[CitizenRow]:
    """Yield every citizen (ascending id) with their ledger lines as the rebuild folds them, streamed.

    On PostgreSQL through psycopg a server-side cursor yields plain tuples with the tick computed by the server:
    SQLAlchemy's row processing and a datetime per line were ~40% of a rebuild's Python time (cProfile, 300k
    citizens). Elsewhere (SQLite) the rows come from stream_ledger. Both give the same rows (tests compare them).
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        yield from _stream_rows_psycopg(session)
        return
    yield from rows_of(stream_ledger(session))


def rows_of(citizens: Iterable[CitizenLedger]) -> Iterator[CitizenRow]:
    """Return citizens (stream_ledger's shape) as the rows write_rows takes."""
    for c in citizens:
        lines = [(line.entry_id, line.points, line.week, scores.tick_of(line.created_at)) for line in c.lines]
        p = c.profile
        if p is None:
            yield c.citizen_id, c.district or "", c.eligible, None, "", False, lines
        else:
            yield c.citizen_id, c.district or "", c.eligible, p.openid, p.name, p.banned, lines


def _stream_rows_psycopg(session: Session) -> Iterator[CitizenRow]:
    created_at = LedgerEntry.__table__.c.created_at
    tick = literal_column(_TICK_SQL.format(f"{LedgerEntry.__tablename__}.{created_at.name}"), BigInteger())
    stmt = _citizens_with_ledger(tick)
    connection = session.connection()
    sql = str(stmt.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    raw = connection.connection.driver_connection
    display_name = scores.display_name
    cid = 0
    lines: list[Entry] = []
    row: CitizenRow | None = None
    # a cursor of the session's own connection and transaction: the same snapshot as the counts read before
    with raw.cursor(name="rebuild_ledger", binary=True) as cursor:  # type: ignore[union-attr]
        cursor.itersize = FETCH
        cursor.execute(sql)
        for citizen_id, entry_id, points, week, tick, district, verified, banned, openid, name, phone in cursor:
            if citizen_id != cid:
                if row is not None:
                    yield row
                cid, lines = citizen_id, []
                # scores.profile_of and rules.is_eligible, unrolled
                row = (cid, district or "", verified and not banned, openid, display_name(name, phone), banned, lines)
            if entry_id is not None:
                lines.append((entry_id, points, week, tick))
    if row is not None:
        yield row


def _check_tick(tick: int) -> None:
    if not 0 <= tick <= scores.MAX_TICK:
        raise scores.ScoreOverflow(f"tick {tick} is outside the score's range ({scores.EPOCH.year}..2156)")


def fold_row(
    district: str, eligible: bool, profile: tuple[str, bool] | None, lines: list[Entry]
) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Return a citizen's summary hash fields (flat: name, value, ...) and their scopes as (scope, points, tick).

    profile: (masked name, banned), None when the citizen has none. The same fields, in the same order, as
    scores.summary_fields(scores.fold(...)) updated with scores.profile_fields(...), and the same scopes as the
    folded summary's (tests compare them).
    """
    fields = ["d", district, "el", "1" if eligible else "0"]
    scopes: list[tuple[str, int, int]] = []
    if lines:
        seen: set[int] = set()
        totals: dict[str, int] = {}
        reached: dict[str, int] = {}
        for entry_id, points, week, tick in lines:
            if entry_id in seen:
                continue
            seen.add(entry_id)
            _check_tick(tick)
            for scope in (keys.ALL_TIME, week):
                totals[scope] = totals.get(scope, 0) + points
                reached[scope] = max(reached.get(scope, tick), tick)
        scopes = [(scope, total, reached[scope]) for scope, total in totals.items()]
        for scope, total, tick in scopes:
            fields += ("p:" + scope, str(total), "r:" + scope, str(tick))
        for entry_id in seen:  # a set's order, as summary_fields writes them
            fields += (str(entry_id), "1")
    if profile is not None:
        fields += ("n", profile[0], "b", "1" if profile[1] else "0")
    return fields, scopes


def _segment(text: str) -> bytes:
    """One RESP bulk string, as hiredis.pack_command writes an argument."""
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


class SummaryPacker:
    """Packs the HSET of a one-line citizen's summary straight to RESP: the bytes hiredis.pack_command gives for
    ("HSET", key, *fold_row fields) (tests compare them). Packing ~18 arguments per citizen was the rebuild's
    largest single cost (py-spy, 300k citizens), and most citizens have one ledger line."""

    def __init__(self, summary_prefix: str) -> None:
        key = summary_prefix.encode()
        self.head = b"*20\r\n$4\r\nHSET\r\n$%d\r\n%b" % (len(key) + keys.MEMBER_DIGITS, key)
        self.profiles: dict[tuple[str, bool], bytes] = {}  # (district, eligible) -> their fields
        self.weeks: dict[str, tuple[bytes, bytes]] = {}  # week -> its field names

    def one_line(self, m: str, district: str, eligible: bool, line: Entry, name: str, banned: bool) -> bytes:
        """Return the packed HSET of a citizen whose ledger is one line (week != ALL_TIME), with a profile."""
        entry_id, points, week, tick = line
        head = self.profiles.get((district, eligible))
        if head is None:
            head = _segment("d") + _segment(district) + _segment("el") + _segment("1" if eligible else "0")
            self.profiles[(district, eligible)] = head
        names = self.weeks.get(week)
        if names is None:
            names = self.weeks[week] = (_segment("p:" + week), _segment("r:" + week))
        p, r, e, n = b"%d" % points, b"%d" % tick, b"%d" % entry_id, name.encode()
        lp, lr = len(p), len(r)
        return (
            b"%b%b\r\n%b$4\r\np:at\r\n$%d\r\n%b\r\n$4\r\nr:at\r\n$%d\r\n%b\r\n%b$%d\r\n%b\r\n%b$%d\r\n%b\r\n"
            b"$%d\r\n%b\r\n$1\r\n1\r\n$1\r\nn\r\n$%d\r\n%b\r\n$1\r\nb\r\n$1\r\n%b\r\n"
        ) % (
            self.head, m.encode(), head, lp, p, lr, r, names[0], lp, p, names[1], lr, r,
            len(e), e, len(n), n, b"1" if banned else b"0",
        )  # fmt: skip


def write_generation(
    client: redis.Redis,
    prefix: str,
    gen: int,
    citizens: Iterable[CitizenLedger],
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Write citizens as stream_ledger yields them into a generation (write_rows); return what write_rows does."""
    return write_rows(client, prefix, gen, rows_of(citizens), on_chunk)


class _Pipelines:
    """Pipelined chunks written by helper threads, at most IN_FLIGHT at once, each on its own connection, so that
    Redis reads the next chunk while the previous one's replies travel back and Python folds the one after.
    `on_chunk(n)` runs after each chunk is written, with the count `put` gave it (ledger entries, then placements);
    a failed write raises from `put` or `drain`."""

    def __init__(self, client: redis.Redis, writer: ThreadPoolExecutor, on_chunk: Callable[[int], None] | None) -> None:
        self.client, self.writer, self.on_chunk = client, writer, on_chunk
        self.in_flight: deque[tuple[Future[None], int]] = deque()  # oldest first, with their counts

    def put(self, commands: list[tuple[Any, ...] | bytes], entries: int) -> None:
        self.drain(IN_FLIGHT - 1)
        if commands:
            self.in_flight.append((self.writer.submit(send_pipelined, self.client, commands), entries))

    def drain(self, keep: int = 0) -> None:
        while len(self.in_flight) > keep:
            future, entries = self.in_flight.popleft()
            future.result()
            if self.on_chunk is not None:
                self.on_chunk(entries)


Group = tuple[str, str, bool]  # (scope, district, eligible): a placement's boards are keys.boards_of(*group)


class Placements:
    """The board placements of a rebuild, gathered while the ledger streams and written once it has ended, each
    scope in descending score order (`by_score`).

    Redis inserts a sorted-set member by walking its skip list from the head: members that arrive in score order
    land next to the one before, whose path is in the CPU's cache, while members in citizen order land anywhere
    in a 4.4M-member list (ZADD of 4.4M members: 5 s of Redis's time in score order, 21 s in citizen order, see
    docs/benchmarks.md). Per placement three flat arrays hold its score's magnitude, its citizen and its group:
    20 bytes, ~180 MB for 4.4M citizens on an all-time and a weekly board, and a scope's sort one int more each
    (a 4.4M-citizen rebuild peaked at 489 MB of RSS, 139 MB before it wrote boards in score order).
    """

    def __init__(self) -> None:
        self.groups: list[Group] = []
        self.group_ids: dict[Group, int] = {}
        self.reached: list[int] = []  # per group: the latest tick of its placements
        self.scopes: dict[str, tuple[array[int], array[int], array[int]]] = {}  # magnitudes, citizens, groups

    def add(self, group: Group, score: int, citizen_id: int, tick: int) -> None:
        gid = self.group_ids.get(group)
        if gid is None:
            gid = self.group_ids[group] = len(self.groups)
            self.groups.append(group)
            self.reached.append(tick)
        elif tick > self.reached[gid]:
            self.reached[gid] = tick
        placed = self.scopes.get(group[0])
        if placed is None:
            placed = self.scopes[group[0]] = (array("q"), array("q"), array("I"))
        placed[0].append(-score)  # scores.encode gives a negative score: its magnitude grows with the points
        placed[1].append(citizen_id)
        placed[2].append(gid)

    def registry(self) -> dict[str, int]:
        """Board name -> its latest tick, boards in the order they were first placed on."""
        updated: dict[str, int] = {}
        for (scope, district, eligible), tick in zip(self.groups, self.reached, strict=True):
            for name in keys.boards_of(scope, district, eligible):
                updated[name] = max(updated.get(name, -1), tick)
        return updated


def by_score(magnitudes: Sequence[int], citizen_ids: Sequence[int], groups: Sequence[int]) -> Iterator[Placed]:
    """Yield the placements of one scope as (score, citizen id, group id) in descending score order (ascending
    magnitude), ties in the order they were placed. One sort of plain ints: magnitude and index in one key."""
    bits = len(magnitudes).bit_length()
    mask = (1 << bits) - 1
    order = [magnitude << bits | i for i, magnitude in enumerate(magnitudes)]
    order.sort()
    for key in order:
        i = key & mask
        yield -(key >> bits), citizen_ids[i], groups[i]


def write_rows(
    client: redis.Redis,
    prefix: str,
    gen: int,
    citizens: Iterable[CitizenRow],
    on_chunk: Callable[[int], None] | None = None,
    on_placed: Callable[[int], None] | None = None,
) -> tuple[int, int, int]:
    """Write the folded summaries and placements of citizens into a generation; return (citizens, entries, max id).

    Also writes the generation's board registry. Two passes: while the ledger streams, each citizen's summary and
    openid are written CHUNK citizens a pipeline (helper threads write a chunk while the next is folded:
    _Pipelines) and their placements gathered (Placements); then every board is written in score order,
    PLACEMENTS_CHUNK placements a pipeline. `on_chunk(n)` runs after each chunk is written: n is its ledger entries,
    then its placements; `on_placed(placements)` runs once in between with how many there are to write.
    A one-line citizen's summary is packed here (SummaryPacker) when send_pipelined packs commands itself. This
    loop runs once per citizen: its Python is what a rebuild costs beyond Redis's own work.
    """
    n_citizens = n_entries = max_id = 0
    commands: list[tuple[Any, ...] | bytes] = []
    pending = pending_entries = 0
    openids: list[str] = []  # openid, member, ... of the chunk
    placements = Placements()
    add = placements.add
    summary_prefix = keys.base(prefix, gen) + "c:"
    openids_key = keys.openids_key(prefix, gen)
    encode, at = scores.encode, keys.ALL_TIME
    packer = SummaryPacker(summary_prefix) if packs_commands(client) else None
    with ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="rebuild-writer") as writer:
        pipelines = _Pipelines(client, writer, on_chunk)
        for cid, district, eligible, openid, name, banned, lines in citizens:
            if not 0 < cid <= keys.MAX_CITIZEN_ID:
                keys.member(cid)  # raises its error
            m = f"{cid:0{keys.MEMBER_DIGITS}d}"  # keys.member
            if packer is not None and openid is not None and len(lines) == 1 and lines[0][2] != at:
                line = lines[0]
                _check_tick(line[3])
                commands.append(packer.one_line(m, district, eligible, line, name, banned))
                scopes: Sequence[tuple[str, int, int]] = ((at, line[1], line[3]), (line[2], line[1], line[3]))
            else:
                fields, scopes = fold_row(district, eligible, None if openid is None else (name, banned), lines)
                commands.append(("HSET", summary_prefix + m, *fields))
            if openid is not None:
                openids += (openid, m)
            for scope, points, tick in scopes:
                if points > 0:  # a total of zero or less leaves the board (scores.placed)
                    add((scope, district, eligible), encode(points, tick), cid, tick)
            n_citizens += 1
            n_entries += len(lines)
            pending += 1
            pending_entries += len(lines)
            if lines:
                max_id = max(max_id, max(line[0] for line in lines))
            if pending >= CHUNK:
                pipelines.put(commands + _commands("HSET", openids_key, openids), pending_entries)
                commands, openids, pending, pending_entries = [], [], 0, 0
        pipelines.put(commands + _commands("HSET", openids_key, openids), pending_entries)
        if on_placed is not None:
            on_placed(sum(len(arrays[0]) for arrays in placements.scopes.values()))
        _write_boards(pipelines, prefix, gen, placements)
        pipelines.drain()
    updated = placements.registry()
    if updated:
        client.hset(keys.registry_key(prefix, gen), mapping=updated)  # type: ignore[arg-type]
    return n_citizens, n_entries, max_id


def _write_boards(pipelines: _Pipelines, prefix: str, gen: int, placements: Placements) -> None:
    """ZADD every placement to its boards, each scope in descending score order (Placements says why)."""
    digits = keys.MEMBER_DIGITS
    for scope in list(placements.scopes):
        magnitudes, citizen_ids, group_ids = placements.scopes.pop(scope)  # freed once written
        boards: dict[str, list[Any]] = {}  # board name -> score, member, ... of the chunk
        targets_of: dict[int, list[list[Any]]] = {}  # group id -> its boards' lists in this chunk
        pending = 0
        for score, cid, gid in by_score(magnitudes, citizen_ids, group_ids):
            targets = targets_of.get(gid)
            if targets is None:
                targets = targets_of[gid] = [
                    boards.setdefault(name, []) for name in keys.boards_of(*placements.groups[gid])
                ]
            m = f"{cid:0{digits}d}"  # keys.member (each id was checked as the ledger streamed)
            for scored in targets:
                scored += (score, m)
            pending += 1
            if pending >= PLACEMENTS_CHUNK:
                pipelines.put(_zadds(prefix, gen, boards), pending)
                boards, pending = {}, 0
                targets_of.clear()
        pipelines.put(_zadds(prefix, gen, boards), pending)


def _commands(name: str, key: str, pairs: list[Any]) -> list[tuple[Any, ...] | bytes]:
    """`name key a1 b1 a2 b2 ...` as commands of PAIRS pairs at most. Redis runs one command at a time, and while a
    hash table that grew past 2^k entries is rehashed (a board or the openids of 4.4M citizens) each insert costs
    ten times as much: a ZADD of 4,000 members then took 55 ms (SLOWLOG), above the 50 ms any command may take."""
    step = 2 * PAIRS
    return [(name, key, *pairs[i : i + step]) for i in range(0, len(pairs), step)]


def _zadds(prefix: str, gen: int, boards: dict[str, list[Any]]) -> list[tuple[Any, ...] | bytes]:
    """The ZADDs of a chunk's boards (board name -> score, member, ...)."""
    return [
        command
        for name, scored in boards.items()
        for command in _commands("ZADD", keys.board_key(prefix, gen, name), scored)
    ]


try:  # redis-py's hiredis parser marks an incomplete reply with this object (read_replies)
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # another redis-py layout: read_replies takes read_response
    _NOT_ENOUGH_DATA = None
_PUSH: type | None = getattr(hiredis, "PushNotification", None)

# Connections that speak RESP over a real socket; anything else (fakeredis, Sentinel-managed) takes the pipeline.
_PLAIN_CONNECTIONS = (redis.Connection, redis.UnixDomainSocketConnection, redis.SSLConnection)


def packs_commands(client: redis.Redis) -> bool:
    """Return True when send_pipelined packs commands itself (and so takes commands packed beforehand)."""
    return getattr(client.connection_pool, "connection_class", None) in _PLAIN_CONNECTIONS


def send_pipelined(client: redis.Redis, commands: Sequence[tuple[Any, ...] | bytes]) -> None:
    """Send commands in one round trip, as a pipeline does, and raise the first error reply after reading all.

    redis-py's pipeline walks every argument in Python before hiredis packs it; a rebuild sends ~16 arguments per
    citizen summary and 2 per board member, and that walk was ~30% of a 4.4M-citizen rebuild's CPU (py-spy, see
    docs/benchmarks.md). On a plain connection hiredis packs the commands directly instead; the pipeline's retry
    policy applies (the commands are idempotent: HSET and ZADD of fixed values).
    """
    pool = client.connection_pool
    if not packs_commands(client):
        pipe = client.pipeline(transaction=False)
        for command in commands:
            if isinstance(command, bytes):
                raise TypeError("commands packed beforehand need a plain connection (see packs_commands)")
            pipe.execute_command(*command)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        pipe.execute()
        return
    pack = hiredis.pack_command
    payload = [b"".join(command if isinstance(command, bytes) else pack(command) for command in commands)]
    conn = pool.get_connection()

    def send() -> redis.ResponseError | None:
        conn.send_packed_command(payload)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        return read_replies(conn, len(commands))

    try:
        error = conn.retry.call_with_retry(send, lambda _exc: conn.disconnect())  # type: ignore[no-untyped-call]
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]  # replies may be left unread: never reuse it as it is
        raise
    finally:
        pool.release(conn)
    if error is not None:
        raise error


def read_replies(conn: redis.Connection, count: int) -> redis.ResponseError | None:
    """Read count replies; return the first error reply (every reply is read), raise a connection error.

    With hiredis, its reader is drained directly: redis-py's read_response costs a few µs of Python per reply,
    a rebuild reads one per citizen. Anything else (another parser) takes read_response.
    """
    parser = getattr(conn, "_parser", None)
    reader = getattr(parser, "_reader", None)
    first: redis.ResponseError | None = None
    if _NOT_ENOUGH_DATA is None or not isinstance(reader, hiredis.Reader) or not hasattr(parser, "read_from_socket"):
        for _ in range(count):
            try:
                conn.read_response()
            except redis.ResponseError as exc:  # that reply was consumed: read the rest, raise after the last one
                first = first or exc
        return first
    gets, fill = reader.gets, parser.read_from_socket  # type: ignore[union-attr]
    while count:
        reply = gets()
        if reply is _NOT_ENOUGH_DATA:
            fill()
            continue
        if _PUSH is not None and isinstance(reply, _PUSH):
            continue  # RESP3 out-of-band data is no reply to a command
        count -= 1
        if isinstance(reply, redis.ResponseError):
            first = first or reply
        elif isinstance(reply, Exception):
            raise reply  # the connection broke (a protocol or connection error): the retry policy decides
    return first


def free_generation(client: redis.Redis, prefix: str, gen: int) -> None:
    """UNLINK every key of a generation (never DEL: a big sorted set would block Redis while it is freed).

    SCAN walks the whole keyspace, both generations: SCAN_COUNT slots per call keeps each call short (a COUNT of
    10,000 took 87 ms over 9M keys, above the 50 ms any command may take while a rebuild runs).
    """
    batch: list[str] = []
    for key in client.scan_iter(match=keys.generation_pattern(prefix, gen), count=SCAN_COUNT):
        batch.append(key)
        if len(batch) >= UNLINK_BATCH:
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
        if abandoned is not None and int(abandoned) != int(client.get(keys.gen_key(prefix)) or 0):
            free_generation(client, prefix, int(abandoned))  # a rebuild that died before its swap
        gen = int(client.incr(keys.genseq_key(prefix)))
        client.set(keys.shadow_key(prefix), gen)
        with db.read() as session:
            total = count_entries(session)
            changes = last_citizen_change(session)
            done = 0
            renewed = time.monotonic()

            def on_chunk(steps: int) -> None:
                nonlocal done, renewed
                done += steps
                if time.monotonic() - renewed >= LOCK_RENEW_SECONDS:  # the lease runs for LOCK_TTL_SECONDS
                    _keep(lock)
                    renewed = time.monotonic()
                if progress is not None:
                    progress(done, max(total, done))

            def on_placed(placements: int) -> None:
                nonlocal total
                total = done + placements  # the entries are all read: the boards' placements remain

            rows = stream_rows(session)
            n_citizens, n_entries, max_id = write_rows(client, prefix, gen, rows, on_chunk, on_placed)
        n_boards = int(client.hlen(keys.registry_key(prefix, gen)))
        client.set(keys.high_water_key(prefix, gen), max_id)
        client.set(keys.changes_key(prefix, gen), changes)  # citizen changes read with the ledger are in
        after = max_id - CATCH_UP_WINDOW
        marker = f"{gen}:{after}"
        swap_keys = [keys.gen_key(prefix), keys.shadow_key(prefix), keys.catchup_key(prefix)]
        _keep(lock)  # still ours (the TTL starts again): nobody has freed this generation as abandoned
        previous = int(boards.scripts.swap(keys=swap_keys, args=[gen, marker]))
        boards.forget_generation()
        boards.generation(fresh=True)
        caught_up = catch_up(db, boards, after)
        clear_catch_up(client, prefix, marker)
        if previous != gen:
            free_generation(client, prefix, previous)
        log.info("boards rebuilt: generation %s, %s citizens, %s entries", gen, n_citizens, n_entries)
        return RebuildReport(gen, previous, n_citizens, n_entries, n_boards, caught_up)
    finally:
        if not lock.release():  # expired during a very slow rebuild: nothing of ours left to release
            log.warning("the rebuild lock had expired before it was released")


def catch_up_marker(client: redis.Redis, prefix: str) -> str | None:
    """The catch-up marker ("gen:after_id") a rebuild's swap set and its catch-up has not cleared, or None."""
    raw = client.get(keys.catchup_key(prefix))
    return raw.decode() if isinstance(raw, bytes) else raw


def clear_catch_up(client: redis.Redis, prefix: str, marker: str) -> None:
    """Clear the catch-up marker if it is still this one (only a rebuild, holding the lock, sets another)."""
    if catch_up_marker(client, prefix) == marker:
        client.unlink(keys.catchup_key(prefix))


def finish_catch_up(db: Database, boards: Boards) -> int | None:
    """Finish a catch-up a rebuild left undone (it died after its swap): re-apply what its marker names and clear it.
    None when there is nothing to finish or a rebuild is running (it clears its own marker); else the entries read.
    A marker of another generation than the current one is stale (a later swap replaced it) and is dropped."""
    client, prefix = boards.redis, boards.prefix
    marker = catch_up_marker(client, prefix)
    if marker is None:
        return None
    lock = Lease(client, keys.lock_key(prefix), LOCK_TTL_SECONDS)
    if not lock.acquire():
        return None
    try:
        if catch_up_marker(client, prefix) != marker:
            return None  # finished or replaced meanwhile
        gen, _, after = marker.partition(":")
        read = 0
        if gen == str(boards.generation(fresh=True)):
            log.warning("finishing the catch-up of leaderboard generation %s (its rebuild stopped after the swap)", gen)
            read = catch_up(db, boards, int(after))
        clear_catch_up(client, prefix, marker)
        return read
    finally:
        lock.release()


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
        # until its generation is in place the boards are lost here, not empty: no standing from a generation 0
        boards.expect_built()
        log.info("another process is rebuilding the boards")
        return None
