"""End-to-end benchmark (not a test): real PostgreSQL + Redis, the service under uvicorn, load from a second process.

    .venv/bin/python bench/e2e.py --full     # 4.4M citizens, 350,000 valid cases in the closed week
    .venv/bin/python bench/e2e.py --quick    # the same code at small sizes
    .venv/bin/python bench/e2e.py --tiny     # the smallest sizes, no time bound (the smoke test)
    .venv/bin/python bench/e2e.py --quick --citizens 4400000 --verdicts 8000 --only verdicts   # one path, sized

Every figure is printed beside a baseline measured in the same run (a markdown table on stdout); `--full` also puts
the table, the command and the machine into docs/benchmarks.md and README.md (between their e2e markers).
BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) names the server where a fresh database is created
and dropped; BENCH_REDIS_URL (default redis://127.0.0.1:6379/3) the Redis database where keys live under a private
prefix, unlinked at the end. Clean-up runs on failure too.

Bulk data is written directly (server-side INSERT … SELECT generate_series; the boards by the real `rebuild`), never
through HTTP. Measurement hygiene, as a live system would be: after seeding, VACUUM ANALYZE and CHECKPOINT (no
autovacuum or checkpoint of millions of fresh rows during a measured phase); the database's files locked in the
page cache (`vmtouch -l`, bench/_private.py's CacheLock: this machine's kernel pages out file cache that a dedicated
database server would keep); and before the service starts, Redis has freed what was unlinked
(lazyfree_pending_objects 0).

Load: wrk for the time-bound GET phases (standing, the bare endpoint) and the verdict POSTs (a Lua script sends each
case's verdict once); install it with `apt-get install wrk`, else those phases fall back to the Python client with a
warning. The Python client of bench/_common.py sends the signed intake batches and every request of `--tiny`
(exact request counts). The service is uvicorn as `rewards serve` runs it
(bench/e2e_app.py).

Phases: seed → rebuild (vs raw ZADD) → weekly close (vs bare SQL, raw ZADD) → uvicorn: standing vs a bare
one-ZREVRANK endpoint, verdicts vs bare INSERT + ZINCRBY, intake vs bare INSERT → memory → clean-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from _common import Row, Service, load, machine_lines, only_ok, replace_block, table, wrk_binary
from _private import PrivateRun, free_prefix

from rewards import migrate
from rewards.bootstrap import bootstrap
from rewards.clock import IsoWeek, week_of
from rewards.config import Settings
from rewards.db import make_engine
from rewards.leaderboard import keys
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.rebuild import CHUNK, rebuild, send_pipelined
from rewards.leaderboard.scores import encode, tick_of
from rewards.scoring.model import EntryFacts

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DISTRICTS = ["城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县"]
SEEDED_TABLES = ("citizens", "cases", "ledger_entries")


@dataclass(frozen=True)
class Sizes:
    """How much data and load one run uses."""

    citizens: int  # on every board of this week and all time (one ledger line each)
    close_cases: int  # valid cases of last week, the week closed
    close_citizens: int  # reporters of those cases
    verdicts: int  # reported cases waiting for a verdict through HTTP
    reads: int  # standing / bare requests per run (and at most `seconds` each)
    reads_single: int  # requests at one connection (latency without queueing)
    intake_events: int  # events sent to the webhook, 100 per batch
    seconds: float | None  # time bound of every load phase (None: none, every request is sent)
    connections: int  # concurrent connections of the read and verdict load
    intake_connections: int
    awards: int = 200  # award-script calls, one entry per round trip (and as many raw ZINCRBY)
    growth: tuple[int, ...] = ()  # smaller populations where the standing's latency is measured too


PHASES = ("rebuild", "award", "close", "standing", "verdicts", "intake", "workers", "growth")

SIZES = {
    "tiny": Sizes(2_000, 500, 200, 50, 200, 50, 200, None, 4, 2, awards=200, growth=(500,)),
    "quick": Sizes(20_000, 5_000, 2_000, 300, 1_500, 200, 600, 10, 8, 2, awards=2_000, growth=(2_000,)),
    "full": Sizes(4_400_000, 350_000, 120_000, 20_000, 40_000, 1_000, 20_000, 20, 8, 2, 20_000, (100_000, 1_000_000)),
}


def rate(n: float, seconds: float) -> str:
    """Format a rate."""
    return f"{n / seconds:,.0f}/s" if seconds > 0 else "n/a"


def server_usec(before: dict[str, Any], after: dict[str, Any], name: str, per: int | None = None) -> float:
    """Redis server time of command `name` between two INFO commandstats readings (scripts' nested commands are
    counted in their script's time too), in µs per call, or per `per` when given (NaN when nothing ran)."""
    x, y = before.get(f"cmdstat_{name}", {}), after.get(f"cmdstat_{name}", {})
    n = per if per is not None else int(y.get("calls", 0)) - int(x.get("calls", 0))
    return (int(y.get("usec", 0)) - int(x.get("usec", 0))) / n if n > 0 else float("nan")


def verdict(ok: bool) -> str:
    """Format a target check."""
    return "**met**" if ok else "**missed**"


INTAKE_BATCH_SIZES = (1, 10, 100, 1000)


def intake_stream(tag: str, count: int, size: int, citizens: int, at: datetime) -> list[dict[str, Any]]:
    """`count` events of new cases: reports by known citizens and their `filed` verdicts, in webhook batches of
    `size`. Batches of 2 or more hold each verdict right after its report; one event a batch, a verdict follows its
    report 50 requests later (the connections take requests from one queue: the report has been answered)."""
    reports, verdicts = [], []
    for n in range(count // 2):
        case_id, cid = f"{tag}{n}", 1 + (n * 2654435761) % citizens
        reports.append(
            {
                "event_id": f"r-{case_id}",
                "type": "report.submitted",
                "occurred_at": at.isoformat(),
                "case_id": case_id,
                "category": "street_lamp",
                "description": "路灯不亮",
                "location": {"lat": 36.06 + n % 100 / 1e4, "lon": 103.83, "coord_system": "gcj02"},
                "district": DISTRICTS[cid % 8],
                "reporter": {"openid": f"o{cid}"},
            }
        )
        filed = {"event_id": f"f-{case_id}", "type": "case.status_changed", "case_id": case_id}
        verdicts.append({**filed, "occurred_at": (at + timedelta(minutes=1)).isoformat(), "status": "filed"})
    if size >= 2:
        return [e for pair in zip(reports, verdicts, strict=True) for e in pair]
    lag = min(50, len(reports))
    out = reports[:lag]
    for n in range(lag, len(reports)):
        out += [reports[n], verdicts[n - lag]]
    return out + verdicts[len(reports) - lag :]


# -- seeding (server-side: no rows cross the wire) -------------------------------------------------------------------


def naive(instant: datetime) -> datetime:
    """Return an instant as the naive UTC the schema stores."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def seed(dsn: str, s: Sizes, now: datetime, this_week: IsoWeek, last_week: IsoWeek, tz: Any) -> None:
    """Write citizens, last week's valid cases, this week's ledger and the reported cases; rebuild indexes after."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        # replica role skips the foreign-key triggers for this session (rows are consistent by construction);
        # secondary indexes and unique constraints are dropped and re-created after the load (one sort each)
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        saved = []
        for table_name in SEEDED_TABLES:
            for name, definition in conn.execute(
                "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_class t"
                " ON t.oid = c.conrelid WHERE t.relname = %s AND c.contype = 'u'",
                (table_name,),
            ).fetchall():
                saved.append(f'ALTER TABLE {table_name} ADD CONSTRAINT "{name}" {definition}')
                conn.execute(f'ALTER TABLE {table_name} DROP CONSTRAINT "{name}"')
            for name, definition in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s"
                " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
                (table_name,),
            ).fetchall():
                saved.append(definition)
                conn.execute(f'DROP INDEX "{name}"')
        n, k, m, v = s.citizens, s.close_cases, s.close_citizens, s.verdicts
        start = this_week.start(tz)
        span = max(1, int((now - timedelta(minutes=2) - start).total_seconds()))  # this week, before now
        p: dict[str, Any] = {
            "n": n,
            "d": DISTRICTS,
            "old": naive(start - timedelta(days=90)),
            "start": naive(start),
            "span": span,
            "week": str(this_week),
            "last_start": naive(last_week.start(tz)),
            "last": str(last_week),
            "k_lo": n + 1,
            "k_hi": n + k,
            "m": m,
            "v_lo": n + k + 1,
            "v_hi": n + k + 2 * v,  # the second half: verdicts at 2 uvicorn workers
            "reported": naive(now - timedelta(hours=1)),
        }
        case_cols = "id, case_id, reporter_id, category, description, coord_system, photos, status, status_at, "
        case_cols += "verdict, reported_at, updated_at, district"
        steps = [
            "INSERT INTO citizens (id, openid, name, phone, district, verified, banned, snapshot_user, created_at,"
            " updated_at) SELECT g, 'o' || g, '市民' || g, NULL, (%(d)s::text[])[g %% 8 + 1], g %% 10 <> 0, false,"
            " false, %(old)s, %(old)s FROM generate_series(1, %(n)s::int) g",
            # this week: one valid case and one ledger line (1-5 points) per citizen, spread over the week so far
            f"INSERT INTO cases ({case_cols}) SELECT g, 'B' || g, g, 'street_lamp', '', 'wgs84', '[]', 'filed', t,"
            " 'valid', t, t, (%(d)s::text[])[g %% 8 + 1] FROM (SELECT g, %(start)s + ((g::bigint * 7919) %% %(span)s)"
            " * interval '1 second' AS t FROM generate_series(1, %(n)s::int) g) s",
            "INSERT INTO ledger_entries (id, citizen_id, case_pk, rule, points, week, reason, created_at)"
            " SELECT id, reporter_id, id, 'valid_report', 1 + id %% 5, %(week)s, '有效举报', reported_at"
            " FROM cases WHERE id <= %(n)s",
            # last week: close_cases valid cases (1 point each) of close_citizens reporters, spread over the week
            f"INSERT INTO cases ({case_cols}) SELECT g, 'W' || g, 1 + (g::bigint * 2654435761) %% %(m)s,"
            " 'street_lamp', '', 'wgs84', '[]', 'filed', t, 'valid', t, t, NULL FROM (SELECT g, %(last_start)s"
            " + ((g::bigint * 7919) %% 604800) * interval '1 second' AS t"
            " FROM generate_series(%(k_lo)s::int, %(k_hi)s::int) g) s",
            "INSERT INTO ledger_entries (id, citizen_id, case_pk, rule, points, week, reason, created_at)"
            " SELECT id, reporter_id, id, 'valid_report', 1, %(last)s, '有效举报', reported_at FROM cases"
            " WHERE id BETWEEN %(k_lo)s AND %(k_hi)s",
            # reported cases waiting for the command center's verdict (the HTTP verdict phase)
            f"INSERT INTO cases ({case_cols}) SELECT g, 'V' || g, 1 + (g::bigint * 40503) %% %(n)s, 'street_lamp',"
            " '', 'wgs84', '[]', 'reported', %(reported)s, NULL, %(reported)s, %(reported)s, NULL"
            " FROM generate_series(%(v_lo)s::int, %(v_hi)s::int) g",
        ]
        for step in steps:
            conn.execute(step, p)  # type: ignore[arg-type]
        for statement in saved:
            conn.execute(statement)  # type: ignore[arg-type]
        for table_name in SEEDED_TABLES:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', 'id'), (SELECT max(id) FROM {table_name}))"
            )  # type: ignore[arg-type]
        settle_postgres(conn)


def settle_postgres(conn: psycopg.Connection[Any]) -> None:
    """Measurement hygiene after a bulk load: VACUUM ANALYZE (the visibility map and statistics, so autovacuum
    does not start on millions of fresh rows during a measured phase) and a CHECKPOINT (the dirty pages written
    now, not by the checkpointer while the service is measured). A live database gets there on its own, over
    time; a freshly seeded one would otherwise spend the HTTP phases doing it."""
    conn.execute("VACUUM (ANALYZE)")
    conn.execute("CHECKPOINT")


# -- Redis ---------------------------------------------------------------------------------------------------------


def settle_redis(client: redis.Redis, limit_seconds: float = 300.0) -> float:
    """Measurement hygiene before the award and HTTP phases: wait until Redis has freed in its background thread
    what was unlinked (lazyfree_pending_objects 0: a previous generation, the raw ZADD baselines), so that freeing
    does not compete with the measured requests; return the seconds waited (bounded: a busy shared server may never
    reach 0, and then the phases start all the same)."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_seconds:
        if int(client.info("memory").get("lazyfree_pending_objects", 0)) == 0:
            break
        time.sleep(0.2)
    return time.perf_counter() - start


def zadd_timed(raw: redis.Redis, key: str, pairs: Sequence[tuple[Any, Any]], packed: bool) -> float:
    """Pipelined ZADD of (member, score) pairs, CHUNK members per command, 4 commands per round trip; return seconds.

    packed: hiredis packs the commands (`send_pipelined`, the rebuild's own transport); else redis-py's pipeline.
    Only the round trips are timed, not building the argument lists.
    """
    spent = 0.0
    if not pairs:
        return spent
    members, scores = zip(*pairs, strict=True)
    batch: list[tuple[Any, ...]] = []
    for i in range(0, len(pairs), CHUNK):
        args: list[Any] = [None] * (2 * len(members[i : i + CHUNK]))
        args[0::2], args[1::2] = scores[i : i + CHUNK], members[i : i + CHUNK]
        batch.append(("ZADD", key, *args))
        if len(batch) == 4 or i + CHUNK >= len(pairs):
            start = time.perf_counter()
            if packed:
                send_pipelined(raw, batch)
            else:
                pipe = raw.pipeline(transaction=False)
                for command in batch:
                    pipe.execute_command(*command)
                pipe.execute()
            spent += time.perf_counter() - start
            batch = []
    return spent


def raw_zadd_boards(raw: redis.Redis, prefix: str, gen: int) -> tuple[float, float, float, int, int]:
    """Baselines of a rebuild: the same members and scores on every board of a generation, written by raw ZADD.

    Each board is read back and sorted by member (ascending citizen id, the order citizens are read in) without
    timing, then written twice: packed by hiredis, and through redis-py's pipeline; then once more, packed, in
    descending score order (the order the rebuild writes a board in: rebuild.Placements), for comparison.
    Returns (seconds packed, seconds through redis-py, seconds in score order, members, boards).
    """
    packed = plain = ordered = 0.0
    members = 0
    names = [n.decode() for n in raw.hkeys(keys.registry_key(prefix, gen))]  # type: ignore[union-attr]
    for name in names:
        key = keys.board_key(prefix, gen, name)
        flat: list[bytes] = []
        size = int(raw.zcard(key))  # type: ignore[arg-type]
        for start in range(0, size, 500_000):
            flat += raw.execute_command("ZRANGE", key, start, start + 499_999, "WITHSCORES")
        pairs = sorted(zip(flat[0::2], flat[1::2], strict=True))  # scores stay the exact text Redis wrote
        by_score = list(zip(flat[0::2], flat[1::2], strict=True))[::-1]  # ZRANGE gave them ascending
        del flat
        for order, is_packed in (("member", True), ("member", False), ("score", True)):
            target = f"{{{prefix}:raw}}:{name}"
            took = zadd_timed(raw, target, pairs if order == "member" else by_score, is_packed)
            if int(raw.zcard(target)) != len(pairs):  # type: ignore[arg-type]
                raise RuntimeError(f"raw ZADD of {name} wrote the wrong number of members")
            raw.unlink(target)
            if order == "score":
                ordered += took
            elif is_packed:
                packed += took
            else:
                plain += took
        members += len(pairs)
    return packed, plain, ordered, members, len(names)


def bare_inserts(dsn: str, sql: str, rows: Sequence[tuple[Any, ...]], connections: int) -> float:
    """Insert rows one per transaction (autocommit) over `connections` connections in threads; return seconds."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(connections)]
    try:

        def work(i: int) -> None:
            with conns[i].cursor() as cur:
                for row in rows[i::connections]:
                    cur.execute(sql, row)  # type: ignore[arg-type]

        start = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(work, range(connections)))
        return time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()


class CommandWatch:
    """The slowest Redis command over a span: SLOWLOG entries logged during it, and LATENCY `command` events.

    The latency monitor is switched on at 50 ms for the span (and restored after) when it was off; the slow log's
    own threshold (10 ms by default) is left as it is, so anything slower than it is listed with its duration.
    Both are server-wide: commands of other clients count too (a pessimistic reading).
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.started = time.time()
        entries = client.slowlog_get(1)
        self.last_id = int(entries[0]["id"]) if entries else -1
        self.threshold = str(client.config_get("latency-monitor-threshold").get("latency-monitor-threshold", "0"))
        if self.threshold == "0":
            client.config_set("latency-monitor-threshold", 50)
        client.latency_reset("command")

    def done(self) -> tuple[float, str, int]:
        """Return (the longest duration in ms, that command's name, LATENCY `command` events ≥ 50 ms)."""
        worst, name = 0.0, "none over the slow log's threshold"
        for entry in self.client.slowlog_get(128):
            if int(entry["id"]) > self.last_id and float(entry["start_time"]) >= self.started - 1:
                ms = int(entry["duration"]) / 1000
                if ms > worst:
                    command = entry["command"]
                    text = command.decode() if isinstance(command, bytes) else str(command)
                    worst, name = ms, text.split(" ", 1)[0]
        history = self.client.latency_history("command")
        events = sum(1 for _, ms in history if int(ms) >= 50)
        if self.threshold == "0":
            self.client.config_set("latency-monitor-threshold", 0)
        return worst, name, events


# -- the run -------------------------------------------------------------------------------------------------------


class Bench(PrivateRun):
    """One run: its private database, key prefix and folder (PrivateRun), secrets and the rows of the table."""

    def __init__(self, sizes: Sizes, pg_url: str, redis_url: str) -> None:
        super().__init__("e2e", pg_url, redis_url)
        self.s = sizes
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=300)
        self.raw = redis.Redis.from_url(redis_url, decode_responses=False, socket_timeout=300, protocol=2)
        self.raw.set_response_callback("ZRANGE", lambda response, **_: response)  # flat bytes: fast to read back
        self.token = f"bench-{uuid.uuid4().hex}"
        self.secret = uuid.uuid4().hex
        self.now = datetime.now(UTC)
        self.tz = Settings().tz
        self.week = week_of(self.now, self.tz)
        self.last_week = self.week.previous()
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.versions: list[str] = []
        self.service: Service | None = None
        self.redis_per_citizen = 0.0
        self.one_worker: dict[str, dict[str, Any]] = {}  # load figures at 1 worker, for the 2-worker rows
        self.extra_rows: list[Row] = []  # issue 13's rows, after the table's first rows (whose order tests keep)
        self.growth_rows: list[tuple[int, dict[str, Any]]] = []

    def env(self) -> dict[str, str]:
        """REWARDS_* variables of the uvicorn worker."""
        return {
            **super().env(),
            "REWARDS_ENVIRONMENT": "production",
            "REWARDS_API_TOKENS": json.dumps({self.token: {"name": "bench-validator", "role": "validator"}}),
            "REWARDS_INTAKE_SECRET": self.secret,
            "REWARDS_SESSION_SECRET": uuid.uuid4().hex,
            "REWARDS_WECHAT_TOKEN": uuid.uuid4().hex,
            # every request comes from one loopback address: lift the per-IP limit (the limiter still runs)
            "REWARDS_RATE_LIMIT_PER_IP": str(10**9),
            "REWARDS_RATE_LIMIT_PER_CITIZEN": str(10**9),
        }

    def step(self, label: str, fn: Callable[[], Any]) -> Any:
        """Run one phase and say how long it took (on stderr: stdout is the table)."""
        print(f"[e2e] {label} …", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = fn()
        print(f"[e2e] {label}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        return result

    # -- phases ------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create and migrate the database, seed it, note the versions."""
        self.create_database()
        self.step("seed PostgreSQL", lambda: seed(self.dsn, self.s, self.now, self.week, self.last_week, self.tz))
        cached = self.step("lock the database in the page cache", self.lock_cache)
        print(f"[e2e] {cached}", file=sys.stderr, flush=True)
        with psycopg.connect(self.dsn) as conn:
            pg = conn.execute("SHOW server_version").fetchone()
            conn.execute(
                "CREATE TABLE bench_bare_ledger (id bigserial PRIMARY KEY, citizen_id int NOT NULL, case_pk int NOT"
                " NULL, rule varchar(32) NOT NULL, points int NOT NULL, week varchar(8) NOT NULL, reason text NOT"
                " NULL, created_at timestamp NOT NULL, UNIQUE (case_pk, rule));"
                " CREATE INDEX ON bench_bare_ledger (citizen_id); CREATE INDEX ON bench_bare_ledger (week);"
                " CREATE TABLE bench_bare_inbox (id bigserial PRIMARY KEY, event_id varchar(128) NOT NULL UNIQUE,"
                " payload text NOT NULL, received_at timestamp NOT NULL)"
            )
        info = self.redis.info("server")
        wrk = wrk_binary()
        self.versions = [
            f"PostgreSQL {pg[0] if pg else '?'}, Redis {info['redis_version']}, Python {sys.version.split()[0]}",
            "load: wrk (time-bound GET phases, verdict POSTs), the Python client (signed intake batches)"
            if wrk and self.s.seconds is not None
            else "load: the Python client (bench/_common.py)",
            cached,
        ]

    def boards(self, timed: bool = True) -> None:
        """Rebuild the boards from the ledger (timed) against raw ZADD of the same members; Redis bytes/citizen.

        Untimed (`--only` without `rebuild`): the boards are built for the later phases, nothing is measured."""
        container = bootstrap(self.settings())
        if not timed:
            try:
                rebuild(container.db, container.boards)
            finally:
                container.close()
            return
        try:
            before = int(self.redis.info("memory")["used_memory"])
            watch = CommandWatch(self.redis)
            start = time.perf_counter()
            report = self.step("rebuild", lambda: rebuild(container.db, container.boards))
            built = time.perf_counter() - start
            slowest = watch.done()
            used = int(self.redis.info("memory")["used_memory"]) - before
            gen = report.generation
            for name in (keys.weekly(str(self.week)), keys.ALL_TIME):
                on = int(self.redis.zcard(keys.board_key(self.prefix, gen, name)))  # type: ignore[arg-type]
                if on != self.s.citizens:
                    raise RuntimeError(f"board {name} holds {on} citizens, expected {self.s.citizens}")
            base = self.step("raw ZADD baselines", lambda: raw_zadd_boards(self.raw, self.prefix, gen))
            raw, plain, ordered, members, n_boards = base
        finally:
            container.close()
        what = f"`rebuild` of {report.citizens:,} citizens ({report.entries:,} ledger entries, PostgreSQL → Redis:"
        what += f" stream, fold, summaries, {n_boards} boards, swap, catch-up)"
        same = f"raw ZADD of the same {members:,} members ({CHUNK:,} per command, 4 per round trip"
        self.rows.append(
            Row(
                what,
                f"{built:.1f} s ({rate(report.citizens, built)} citizens)",
                same + ", packed by hiredis as the rebuild sends them)",
                f"{raw:.1f} s",
                f"{built / raw:.2f}× the time",
                f"≤ 2× — {verdict(built <= 2 * raw)}",
            )
        )
        self.rows.append(
            Row("`rebuild` (as above)", f"{built:.1f} s", same + ", through redis-py's pipeline)", f"{plain:.1f} s",
                f"{built / plain:.2f}× the time")
        )  # fmt: skip
        self.notes.append(f"rebuild {built:.1f} s = {built / raw:.2f}× raw ZADD {raw:.1f} s (target ≤ 2×)")
        self.extra_rows.append(
            Row("`rebuild` (as above)", f"{built:.1f} s", same + ", packed, each board in descending score order: the"
                " order the rebuild writes in)", f"{ordered:.1f} s", f"{built / ordered:.2f}× the time", "—")
        )  # fmt: skip
        worst_ms, worst_command, events = slowest
        self.extra_rows.append(
            Row(
                "slowest Redis command while the rebuild ran (SLOWLOG entries of those seconds, any client;"
                " LATENCY `command` events ≥ 50 ms)",
                f"{worst_ms:.1f} ms ({worst_command}); {events} latency event(s)",
                "—",
                "—",
                "—",
                f"none over 50 ms — {verdict(worst_ms <= 50 and events == 0)}",
            )
        )
        self.notes.append(f"slowest Redis command during the rebuild {worst_ms:.1f} ms (target ≤ 50 ms)")
        self.redis_per_citizen = used / report.citizens

    def award_script(self) -> None:
        """The award script one entry per round trip (an after-commit effect) against raw ZINCRBY one per round
        trip, on boards of their own (a private prefix); server CPU per call from INFO commandstats."""
        s = self.s
        # the rebuild phase's baselines were just unlinked: their freeing must not share the CPU with these calls
        waited = settle_redis(self.redis)
        print(f"[e2e] Redis lazyfree settled in {waited:.1f} s", file=sys.stderr, flush=True)
        settings = self.settings().model_copy(update={"leaderboard_key_prefix": f"{self.prefix}aw"})
        boards = Boards(self.redis, settings)
        week, tick_at = str(self.week), self.now - timedelta(minutes=5)
        rnd = random.Random(4)
        entries = [
            EntryFacts(i, rnd.randint(1, s.citizens), DISTRICTS[i % 8], 1 + i % 5, week, tick_at, i % 10 != 0)
            for i in range(1, s.awards + 1)
        ]
        raw_key = f"{{{self.prefix}aw:raw}}:w"
        # each script call is followed by its ZINCRBY: both see the same moments of the machine (a checkpoint, a
        # background free, another tenant), where two loops one after the other each met their own
        before = self.redis.info("commandstats")
        lua = raw = 0.0
        for e in entries:
            start = time.perf_counter()
            boards.apply([e])
            middle = time.perf_counter()
            self.redis.zincrby(raw_key, e.points, keys.member(e.citizen_id))
            lua, raw = lua + (middle - start), raw + (time.perf_counter() - middle)
        after = self.redis.info("commandstats")
        ratio = raw / lua  # throughput ratio: calls per second of the script over those of ZINCRBY
        self.extra_rows.append(
            Row(
                f"award script, one entry per round trip ({s.awards:,} entries: apply-once guard, summary, all-time,"
                " weekly, eligible and district boards, registry, high-water mark)",
                f"{rate(s.awards, lua)} (server {server_usec(before, after, 'evalsha'):.1f} µs/call)",
                "raw ZINCRBY of the same entries, one per round trip, each right after its script call",
                f"{rate(s.awards, raw)} (server {server_usec(before, after, 'zincrby'):.1f} µs/call)",
                f"{ratio:.2f}×",
                f"≥ 0.5× — {verdict(ratio >= 0.5)}",
            )
        )
        self.notes.append(f"award script {ratio:.2f}× raw ZINCRBY one per round trip (target ≥ 0.5×)")
        free_prefix(self.redis, f"{self.prefix}aw")

    def growth(self) -> None:
        """The standing's latency at one connection at smaller populations: each its own database, boards, server."""
        for n in self.s.growth:
            dsn_db = f"{self.db}_g{n}"
            self.admin(f'CREATE DATABASE "{dsn_db}"')
            try:
                dsn = self.admin_dsn.rsplit("/", 1)[0] + "/" + dsn_db
                url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
                engine = make_engine(url)
                migrate.upgrade(engine)
                engine.dispose()
                small = Sizes(n, 0, 0, 0, 0, 0, 0, None, 1, 1)
                seed(dsn, small, self.now, self.week, self.last_week, self.tz)
                prefix = f"{self.prefix}g{n}"
                settings = self.settings().model_copy(update={"database_url": url, "leaderboard_key_prefix": prefix})
                container = bootstrap(settings)
                try:
                    rebuild(container.db, container.boards)
                finally:
                    container.close()
                env = {**self.env(), "REWARDS_DATABASE_URL": url, "REWARDS_LEADERBOARD_KEY_PREFIX": prefix}
                settle_redis(self.redis)
                service = Service(env, self.tmp / f"uvicorn-g{n}.log")
                try:
                    single = self.single_latency(service.port, n)
                finally:
                    service.stop()
                self.growth_rows.append((n, single))
            finally:
                free_prefix(self.redis, f"{self.prefix}g{n}")
                self.admin(f'DROP DATABASE IF EXISTS "{dsn_db}" WITH (FORCE)')

    def single_latency(self, port: int, citizens: int) -> dict[str, Any]:
        """Standing requests at one connection for random citizens of a population; the load's figures."""
        pick = random.Random(2).sample(range(1, citizens + 1), min(citizens, self.s.reads + 200))
        paths = [f"/api/v1/citizens/o{cid}/standing" for cid in pick]  # as many as the main run: wrk cycles them
        auth = {"Authorization": f"Bearer {self.token}"}
        spec = {"kind": "get", "paths": paths, "count": self.s.reads_single + 50, "headers": auth}
        result = load(port, {**spec, "concurrency": 1, "max_seconds": self.s.seconds, "warmup": 50})
        only_ok(result, f"standing at {citizens:,} citizens")
        return result

    def two_workers(self) -> None:
        """Standing (and its bare baseline) and verdicts at 2 uvicorn workers, beside the 1-worker figures."""
        s = self.s
        service = Service(self.env(), self.tmp / "uvicorn-2.log", workers=2)
        try:
            port = service.port
            pick = random.Random(3).sample(range(1, s.citizens + 1), min(s.citizens, s.reads + 200))
            auth = {"Authorization": f"Bearer {self.token}"}
            runs: dict[str, dict[str, Any]] = {}
            for name, paths, headers in (
                ("bare", [f"/bench/zrevrank/{keys.member(c)}" for c in pick], {}),
                ("standing", [f"/api/v1/citizens/o{c}/standing" for c in pick], auth),
            ):
                spec = {"kind": "get", "paths": paths, "headers": headers, "concurrency": s.connections}
                runs[name] = load(port, {**spec, "max_seconds": s.seconds, "warmup": 200})
                only_ok(runs[name], f"{name} at 2 workers")
            first = s.citizens + s.close_cases + s.verdicts + 1  # the second half of the waiting cases
            requests = [
                [f"/api/v1/cases/V{g}/verdict", '{"verdict": "valid"}'] for g in range(first, first + s.verdicts)
            ]
            spec = {"kind": "post", "requests": requests, "headers": auth, "concurrency": s.connections}
            result = load(port, {**spec, "max_seconds": s.seconds})
            done = only_ok(result, "verdicts at 2 workers")
        finally:
            service.stop()
        one_st, one_b = self.one_worker["standing"], self.one_worker["bare"]
        st, b = runs["standing"], runs["bare"]
        self.extra_rows.append(
            Row(
                f"standing throughput at 1 → 2 uvicorn workers ({s.connections} connections)",
                f"{one_st['rate']:,.0f} → {st['rate']:,.0f} req/s ({st['rate'] / one_st['rate']:.2f}×)",
                "bare ZREVRANK endpoint at 1 → 2 workers",
                f"{one_b['rate']:,.0f} → {b['rate']:,.0f} req/s",
                f"{one_st['rate'] / one_b['rate']:.2f}× → {st['rate'] / b['rate']:.2f}×",
            )
        )
        one_v = self.one_worker.get("verdicts")
        self.extra_rows.append(
            Row(
                f"verdicts at 1 → 2 uvicorn workers ({s.connections} connections, {done:,} verdicts at 2)",
                (f"{one_v['rate']:,.0f} → " if one_v else "")
                + f"{done / result['seconds']:,.0f}/s (p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms)",
            )
        )

    def growth_table(self) -> None:
        """Rows of the standing's latency at one connection by population (the largest is the main run's)."""
        main = self.one_worker.get("standing1")
        rows = [*self.growth_rows, *([(self.s.citizens, main)] if main else [])]
        for n, result in sorted(rows, key=lambda r: r[0]):
            ok = result["p99_ms"] <= 5
            self.extra_rows.append(
                Row(
                    f"standing latency p50 / p99 at 1 connection, {n:,} citizens on the boards",
                    f"{result['p50_ms']:.2f} / {result['p99_ms']:.2f} ms",
                    "—",
                    "—",
                    "—",
                    f"p99 ≤ 5 ms — {verdict(ok)}" if n == self.s.citizens else "—",
                )
            )

    def close(self) -> None:
        """Close last week (timed) against the bare SQL aggregate and raw ZADD of the week's members."""
        container = bootstrap(self.settings())
        try:
            start = time.perf_counter()
            closed = container.closer.close(self.last_week)
            took = time.perf_counter() - start
        finally:
            container.close()
        if not closed.created or closed.board_status != "match":
            raise RuntimeError(f"weekly close: created={closed.created}, board {closed.board_status}")
        start = time.perf_counter()
        with psycopg.connect(self.dsn) as conn:
            totals = conn.execute(
                "SELECT citizen_id, sum(points), max(created_at) FROM ledger_entries WHERE week = %s"
                " GROUP BY citizen_id",
                (str(self.last_week),),
            ).fetchall()
        bare = time.perf_counter() - start
        pairs = sorted(
            (keys.member(cid).encode(), str(encode(int(p), tick_of(at.replace(tzinfo=UTC)))).encode())
            for cid, p, at in totals
            if p > 0
        )
        raw = zadd_timed(self.raw, f"{{{self.prefix}:raw}}:close", pairs, packed=True)
        self.raw.unlink(f"{{{self.prefix}:raw}}:close")
        what = f"{self.s.close_cases:,} valid cases, {closed.snapshot.participants:,} eligible participants"
        self.rows.append(
            Row(
                f"weekly close of {self.last_week} ({what}; ledger → ranking → snapshot, Redis top compared)",
                f"{took:.2f} s",
                "bare SQL: the week's GROUP BY citizen totals",
                f"{bare:.2f} s",
                f"{took / bare:.1f}× the time",
                f"< 5 s — {verdict(took < 5)}",
            )
        )
        self.rows.append(
            Row(
                "weekly close (as above)",
                f"{took:.2f} s",
                f"raw pipelined ZADD of the week's {len(pairs):,} members",
                f"{raw:.2f} s",
                f"{took / raw:.1f}× the time",
            )
        )
        self.notes.append(f"weekly close of {self.s.close_cases:,} cases {took:.2f} s (target < 5 s)")

    def standing(self, port: int) -> None:
        """Standing requests per second and latency against the bare one-ZREVRANK endpoint, same citizens."""
        s = self.s
        pick = random.Random(1).sample(range(1, s.citizens + 1), min(s.citizens, s.reads + 200))
        auth = {"Authorization": f"Bearer {self.token}"}
        stand = [f"/api/v1/citizens/o{cid}/standing" for cid in pick]
        bare = [f"/bench/zrevrank/{keys.member(cid)}" for cid in pick]
        runs: dict[str, dict[str, Any]] = {}
        for name, paths, headers in (("bare", bare, {}), ("standing", stand, auth)):
            for conns, count in ((s.connections, len(paths)), (1, s.reads_single + 50)):
                # count bounds the Python client; wrk cycles through every path for `seconds`
                spec = {"kind": "get", "paths": paths, "count": count, "headers": headers, "concurrency": conns}
                result = load(port, {**spec, "max_seconds": s.seconds, "warmup": 200 if conns > 1 else 50})
                only_ok(result, f"{name} at {conns} connection(s)")
                runs[f"{name}{conns}"] = result
        b, st = runs[f"bare{s.connections}"], runs[f"standing{s.connections}"]
        self.one_worker.update(standing=st, bare=b, standing1=runs["standing1"])
        ratio = st["rate"] / b["rate"]
        n = f"{s.citizens:,} citizens on the boards"
        self.rows.append(
            Row(
                f"`GET /api/v1/citizens/{{openid}}/standing` ({n}; {s.connections} connections, {st['done']:,} req)",
                f"{st['rate']:,.0f} req/s",
                f"bare endpoint on the same server, one ZREVRANK ({b['done']:,} req)",
                f"{b['rate']:,.0f} req/s",
                f"{ratio:.2f}×",
                f"≥ 0.7× — {verdict(ratio >= 0.7)}",
            )
        )
        for conns in (s.connections, 1):
            st, b = runs[f"standing{conns}"], runs[f"bare{conns}"]
            self.rows.append(
                Row(
                    f"standing latency p50 / p99 at {conns} connection{'s' if conns > 1 else ''}",
                    f"{st['p50_ms']:.2f} / {st['p99_ms']:.2f} ms",
                    "bare ZREVRANK endpoint",
                    f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms",
                    f"{st['p50_ms'] / b['p50_ms']:.1f}× / {st['p99_ms'] / b['p99_ms']:.1f}×",
                )
            )
        self.notes.append(f"standing {ratio:.2f}× the bare endpoint's throughput (target ≥ 0.7×)")

    def verdicts(self, port: int) -> None:
        """Verdicts through HTTP (verdict → ledger commit → boards) against bare INSERT + pipelined ZINCRBY."""
        s = self.s
        first = s.citizens + s.close_cases + 1
        requests = [[f"/api/v1/cases/V{g}/verdict", '{"verdict": "valid"}'] for g in range(first, first + s.verdicts)]
        auth = {"Authorization": f"Bearer {self.token}"}
        spec = {"kind": "post", "requests": requests, "headers": auth, "concurrency": s.connections}
        before = self.redis.info("commandstats")
        result = load(port, {**spec, "max_seconds": s.seconds})
        after = self.redis.info("commandstats")
        done = only_ok(result, "verdicts")
        # the boards' share: every script's server time during the load (the award script, a first award's profile
        # restatement, the projector's catch-up if any; commandstats is server-wide) per verdict. At 4.4M each award
        # ZADD walks a skiplist of millions of members; the baseline's ZINCRBY goes into a key of its own.
        award_us = server_usec(before, after, "evalsha", per=done)
        with psycopg.connect(self.dsn) as conn:
            entries = conn.execute(
                "SELECT l.id, l.citizen_id, l.case_pk FROM ledger_entries l JOIN cases c ON c.id = l.case_pk"
                " WHERE c.case_id LIKE 'V%%'"
            ).fetchall()
        self.check_applied(entries, done, "verdicts")
        rows = [(cid, pk, "valid_report", 1, str(self.week), "有效举报", naive(self.now)) for _, cid, pk in entries]
        sql = (
            "INSERT INTO bench_bare_ledger (citizen_id, case_pk, rule, points, week, reason, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        inserts = bare_inserts(self.dsn, sql, rows, s.connections)
        before = self.redis.info("commandstats")
        start = time.perf_counter()
        pipe = self.redis.pipeline(transaction=False)
        for i, (_, cid, _) in enumerate(entries, 1):
            pipe.zincrby(f"{{{self.prefix}:raw}}:zincrby", 1, keys.member(cid))
            if i % 500 == 0:
                pipe.execute()
        pipe.execute()
        zincr = time.perf_counter() - start
        zincr_us = server_usec(before, self.redis.info("commandstats"), "zincrby")
        ours, base = done / result["seconds"], done / (inserts + zincr)
        self.rows.append(
            Row(
                f"verdicts through HTTP (`POST …/verdict` → ledger commit → boards; {s.connections} connections,"
                f" {done:,} verdicts)",
                f"{ours:,.0f}/s (p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms;"
                f" Redis server {award_us:,.0f} µs/verdict)",
                f"the same count of bare INSERT + COMMIT ({s.connections} connections) + pipelined ZINCRBY",
                f"{base:,.0f}/s ({inserts:.2f} s + {zincr:.2f} s; Redis server {zincr_us:,.1f} µs/ZINCRBY)",
                f"{ours / base:.2f}×",
                f"≥ 0.1× — {verdict(ours / base >= 0.1)}",
            )
        )
        self.notes.append(f"verdicts {ours / base:.2f}× bare INSERT + COMMIT + ZINCRBY (target ≥ 0.1×)")

    def check_applied(self, entries: Sequence[tuple[int, int, int]], done: int, what: str) -> None:
        """Every answered request left one ledger entry, and every entry reached the boards (apply-once ids)."""
        if len(entries) != done:
            raise RuntimeError(f"{what}: {done} answered but {len(entries)} ledger entries")
        gen = Boards(self.redis, self.settings()).generation(fresh=True)
        pipe = self.redis.pipeline(transaction=False)
        for entry_id, cid, _ in entries:
            pipe.hexists(keys.summary_key(self.prefix, gen, cid), str(entry_id))
        missing = sum(1 for found in pipe.execute() if not found)
        if missing:
            raise RuntimeError(f"{what}: {missing} ledger entries never reached the boards")

    def intake(self, port: int) -> None:
        """Signed webhook batches of 100 events (50 reports + their 50 `filed` verdicts) against bare INSERTs."""
        s = self.s
        at = self.now - timedelta(minutes=3)
        stream = intake_stream(f"I{self.run}-", s.intake_events // 100 * 100, 100, s.citizens, at)
        batches = [stream[i : i + 100] for i in range(0, len(stream), 100)]  # 50 reports + their 50 `filed` each
        spec = {"kind": "intake", "path": "/intake/v1/events", "secret": self.secret, "batches": batches}
        result = load(port, {**spec, "concurrency": s.intake_connections, "max_seconds": s.seconds})
        done = only_ok(result, "intake")
        events_done = done * 100
        if result["applied"] != events_done or result["failed"]:
            raise RuntimeError(
                f"intake: {result['applied']} of {events_done} events applied, {result['failed']} failed"
            )
        with psycopg.connect(self.dsn) as conn:
            entries = conn.execute(
                "SELECT l.id, l.citizen_id, l.case_pk FROM ledger_entries l JOIN cases c ON c.id = l.case_pk"
                " WHERE c.case_id LIKE %s",
                (f"I{self.run}-%",),
            ).fetchall()
        self.check_applied(entries, done * 50, "intake")
        sent = [e for batch in batches[:done] for e in batch]
        rows = [(e["event_id"], json.dumps(e, ensure_ascii=False), naive(self.now)) for e in sent]
        sql = "INSERT INTO bench_bare_inbox (event_id, payload, received_at) VALUES (%s, %s, %s)"
        inserts = bare_inserts(self.dsn, sql, rows, s.intake_connections)
        ours, base = events_done / result["seconds"], events_done / inserts
        self.rows.append(
            Row(
                f"intake events (signed webhook, batches of 100 = 50 reports + their 50 `filed`; "
                f"{s.intake_connections} connections, {events_done:,} events)",
                f"{ours:,.0f} events/s (p50 {result['p50_ms']:.0f} ms per batch)",
                f"bare INSERT + COMMIT of each event's JSON ({s.intake_connections} connections)",
                f"{base:,.0f}/s",
                f"{ours / base:.2f}×",
                f"≥ 0.3× — {verdict(ours / base >= 0.3)}",
            )
        )
        self.notes.append(f"intake {ours / base:.2f}× bare INSERT + COMMIT (target ≥ 0.3×)")

    def intake_sizes(self, port: int) -> None:
        """Signed webhook throughput at batch sizes 1, 10, 100, 1000 (reports + their `filed`), each beside bare
        INSERT + COMMIT of the same events' JSON (same connections, same run)."""
        s = self.s
        at = self.now - timedelta(minutes=3)
        for size in INTAKE_BATCH_SIZES:
            events = intake_stream(f"S{size}{self.run}-", max(s.intake_events, 4 * size), size, s.citizens, at)
            batches = [events[i : i + size] for i in range(0, len(events), size)]
            spec = {"kind": "intake", "path": "/intake/v1/events", "secret": self.secret, "batches": batches}
            result = load(port, {**spec, "concurrency": s.intake_connections, "max_seconds": s.seconds})
            done = only_ok(result, f"intake at batch size {size}")
            sent = [e for batch in batches[:done] for e in batch]
            if result["applied"] != len(sent) or result["failed"]:
                raise RuntimeError(f"intake at batch size {size}: {result['applied']} of {len(sent)} applied")
            rows = [(e["event_id"], json.dumps(e, ensure_ascii=False), naive(self.now)) for e in sent]
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute("TRUNCATE bench_bare_inbox")
            sql = "INSERT INTO bench_bare_inbox (event_id, payload, received_at) VALUES (%s, %s, %s)"
            bare = bare_inserts(self.dsn, sql, rows, s.intake_connections)
            ours, base = len(sent) / result["seconds"], len(sent) / bare
            self.extra_rows.append(
                Row(
                    f"intake at batch size {size:,} (signed webhook, reports + their `filed`; "
                    f"{s.intake_connections} connections, {len(sent):,} events)",
                    f"{ours:,.0f} events/s (p50 {result['p50_ms']:.0f} ms per batch)",
                    f"bare INSERT + COMMIT of each event's JSON ({s.intake_connections} connections)",
                    f"{base:,.0f}/s",
                    f"{ours / base:.2f}×",
                )
            )

    def http(self, phases: frozenset[str] = frozenset(PHASES)) -> None:
        """Start the service, run the HTTP phases, read the worker's peak memory, stop it."""
        waited = settle_redis(self.redis)
        print(f"[e2e] Redis lazyfree settled in {waited:.1f} s", file=sys.stderr, flush=True)
        self.service = Service(self.env(), self.tmp / "uvicorn.log")
        port = self.service.port
        if "standing" in phases:
            self.step("standing vs bare ZREVRANK", lambda: self.standing(port))
        if "verdicts" in phases:
            self.step("verdicts", lambda: self.verdicts(port))
        verdict_row = next((r for r in reversed(self.rows) if r.measure.startswith("verdicts through HTTP")), None)
        if verdict_row is not None:  # the 1-worker figure, for the 2-worker row
            self.one_worker["verdicts"] = {"rate": float(verdict_row.figure.split("/s")[0].replace(",", ""))}
        if "intake" in phases:
            self.step("intake", lambda: self.intake(port))
            self.step("intake at batch sizes 1, 10, 100, 1000", lambda: self.intake_sizes(port))
        peak = self.service.peak_rss_mib()
        self.service.stop()
        self.rows.append(
            Row("web worker peak RSS (VmHWM, 1 uvicorn worker, after every HTTP phase)", f"{peak:.0f} MiB")
        )
        self.rows.append(
            Row(
                "Redis memory per citizen (used_memory growth over the rebuild: summaries + every board)",
                f"{self.redis_per_citizen:.0f} B",
                f"→ {self.redis_per_citizen * 4_400_000 / 2**30:.2f} GiB at 4.4M citizens",
            )
        )

    def cleanup(self) -> None:
        """Stop the worker, unlink the run's keys, drop the database (each step tried even if another failed)."""
        if self.service is not None:
            self.service.stop()
        freed = self.drop()
        print(f"[e2e] unlinked {freed:,} keys of prefix {self.prefix}", file=sys.stderr)


def report(bench: Bench, command: str, seconds: float) -> str:
    """Return the markdown block: command, machine, table, targets."""
    lines = machine_lines(bench.versions)
    out = [
        f"Command: `{command}` — run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {seconds:.0f} s in all.",
        "",
        "Machine: " + "; ".join(lines) + ". Service, PostgreSQL, Redis and the load generator share this machine.",
        "",
        table([*bench.rows, *bench.extra_rows]),
        "",
        "Targets: " + "; ".join(bench.notes) + ".",
    ]
    return "\n".join(out)


def stop_on_sigterm(signum: int, _frame: object) -> None:
    """Turn SIGTERM into SystemExit (exit status 128 + 15), so that the run's `finally` cleans up."""
    print("[e2e] terminated: cleaning up", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run every phase, print the table (and write the docs on --full)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="the smallest sizes and no time bound: a smoke run")
    size.add_argument("--quick", action="store_true", help="small sizes: a short run of the same code")
    size.add_argument("--full", action="store_true", help="4.4M citizens, 350,000 cases (the default)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md and README.md")
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help=f"comma-separated phases to measure (default all: {','.join(PHASES)}); the boards are always built,"
        " and a partial run never writes the docs",
    )
    parser.add_argument("--citizens", type=int, help="citizens on the boards instead of the size's own count")
    parser.add_argument("--verdicts", type=int, help="cases given a verdict through HTTP instead of the size's own")
    args = parser.parse_args(argv)
    phases = frozenset(p.strip() for p in args.only.split(",") if p.strip())
    unknown = phases - set(PHASES)
    if unknown or not phases:
        parser.error(
            f"--only: unknown phase(s) {', '.join(sorted(unknown)) or '(none)'}; choose from {', '.join(PHASES)}"
        )
    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    if args.citizens is not None:
        if args.citizens < max(sizes.close_citizens, 10):
            parser.error(f"--citizens must be at least {max(sizes.close_citizens, 10)} at this size")
        sizes = dataclasses.replace(
            sizes, citizens=args.citizens, growth=tuple(g for g in sizes.growth if g < args.citizens)
        )
    if args.verdicts is not None:
        if args.verdicts < 1:
            parser.error("--verdicts must be at least 1")
        sizes = dataclasses.replace(sizes, verdicts=args.verdicts)
    partial = phases != set(PHASES) or args.citizens is not None or args.verdicts is not None
    pg_url = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    bench = Bench(sizes, pg_url, os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"))
    command = ".venv/bin/python bench/e2e.py " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    start = time.perf_counter()
    # a run stopped by SIGTERM (a timeout, `kill`) cleans up as one stopped by Ctrl-C does: the default action would
    # end the process at once and leave its database, its keys and its page-cache lock (vmtouch, a daemon) behind
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        bench.prepare()
        if "rebuild" in phases:
            bench.step("rebuild vs raw ZADD", bench.boards)
        else:
            bench.step("rebuild (untimed)", lambda: bench.boards(timed=False))
        if "award" in phases:
            bench.step("award script vs raw ZINCRBY", bench.award_script)
        if "close" in phases:
            bench.step("weekly close", bench.close)
        if phases & {"standing", "verdicts", "intake"}:
            bench.http(phases)
        if "workers" in phases and {"standing", "verdicts"} <= phases:
            bench.step("2 uvicorn workers", bench.two_workers)
        if "growth" in phases:
            bench.step("standing at smaller populations", bench.growth)
        bench.growth_table()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not cut the clean-up short
        bench.step("clean-up", bench.cleanup)
    block = report(bench, command.strip(), time.perf_counter() - start)
    print(block)
    if not (args.tiny or args.quick or args.no_docs or partial):
        replace_block(ROOT / "docs" / "benchmarks.md", block, "# Benchmarks")
        replace_block(ROOT / "README.md", block, "# rewards")
    return 0


if __name__ == "__main__":
    sys.exit(main())
