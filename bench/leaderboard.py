"""Leaderboard benchmark (not a test): real Redis, every figure next to a baseline measured in the same run.

    .venv/bin/python bench/leaderboard.py            # 1M and 4.4M citizens, 350,000 cases (a few minutes)
    .venv/bin/python bench/leaderboard.py --quick    # small sizes: a short run of the same code
    .venv/bin/python bench/leaderboard.py --tiny     # the smallest sizes: a smoke run (tests/e2e/test_bench_smoke.py)

BENCH_REDIS_URL (default redis://127.0.0.1:6379/0) names the server. Keys live under a private prefix and are
freed with UNLINK at the end of each section. Prints:
 (a) the award path (Lua apply-once script) per second against raw ZINCRBY of the same count, both pipelined,
     and one entry per round trip (what an after-commit effect does);
 (b) standing() latency p50/p99 at each population, against a bare ZRANK round trip;
 (c) rebuild time for 350,000 cases (from a SQLite ledger: SQL stream + fold + Redis + swap + catch-up) and for
     each population (Redis stage from a generated ledger), against raw pipelined ZADD of the same members;
 (d) Redis memory per citizen (used_memory delta; boards and summaries measured with MEMORY USAGE).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import redis
from _private import free_prefix
from sqlalchemy import insert

from rewards import migrate
from rewards.bootstrap import bootstrap
from rewards.cases.models import Case, Citizen
from rewards.clock import FixedClock, week_of
from rewards.config import Settings
from rewards.db import make_engine
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.rebuild import (
    CHUNK,
    CitizenLedger,
    free_generation,
    rebuild,
    stream_ledger,
    write_generation,
)
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import EntryFacts

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday of 2026-W48 (08:00 in Shanghai)
WEEK = "2026-W48"
DISTRICTS = ["城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县"]
RUN = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Sizes:
    """How much data one run uses."""

    entries: int  # (a) award-path entries
    populations: tuple[int, ...]  # (b)(d) board populations, grown one after another
    samples: int  # (b) standing lookups per population
    cases: int  # (c) cases of the SQL ledger
    citizens: int  # (c) their reporters


SIZES = {
    "tiny": Sizes(1_000, (2_000, 5_000), 200, 2_000, 500),
    "quick": Sizes(5_000, (20_000, 50_000), 500, 20_000, 5_000),
    "full": Sizes(50_000, (1_000_000, 4_400_000), 5_000, 350_000, 100_000),
}


def settings_for(prefix: str) -> Settings:
    """Settings with a private key prefix."""
    return Settings(leaderboard_key_prefix=prefix)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s"


def synthetic(n: int, first: int = 1) -> Iterator[CitizenLedger]:
    """A generated ledger: one award per citizen, 1..5 points, reached on a 7-day grid (many exact ties)."""
    for cid in range(first, n + 1):
        at = T0 + timedelta(seconds=(cid * 7919) % 604_800)
        line = scores.Line(cid, 1 + cid % 5, WEEK, at)
        yield CitizenLedger(cid, DISTRICTS[cid % len(DISTRICTS)], cid % 10 != 0, [line])


def raw_zadd(client: redis.Redis, prefix: str, citizens: Iterator[CitizenLedger]) -> float:
    """Baseline: pipelined ZADD of the same (board, member, score) as a rebuild, same batching; only Redis timed."""
    spent = 0.0
    done = False
    while not done:
        boards: dict[str, dict[str, int]] = {}
        for _ in range(CHUNK):
            c = next(citizens, None)
            if c is None:
                done = True
                break
            m = keys.member(c.citizen_id)
            for name, score in scores.placements(scores.fold(c.lines, c.district, c.eligible)).items():
                boards.setdefault(name, {})[m] = score
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for name, members in boards.items():
            pipe.zadd(f"{{{prefix}:raw}}:{name}", members)  # type: ignore[arg-type]
        pipe.execute()
        spent += time.perf_counter() - start
    return spent


def section_award(client: redis.Redis, n: int) -> None:
    """(a) the award path against raw ZINCRBY."""
    prefix = f"bench{RUN}a"
    boards = Boards(client, settings_for(prefix))
    rnd = random.Random(1)
    entries = []
    for i in range(1, n + 1):
        cid = rnd.randint(1, max(1, n // 3))
        at = T0 + timedelta(seconds=i)
        entries.append(EntryFacts(i, cid, rnd.choice(DISTRICTS), rnd.randint(1, 3), WEEK, at, rnd.random() < 0.9))
    single = entries[: n // 10]
    try:
        start = time.perf_counter()
        boards.apply(entries)
        lua = time.perf_counter() - start
        start = time.perf_counter()
        boards.apply(entries)  # every entry again: the replay path (guard hit, nothing written)
        replay = time.perf_counter() - start
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for i, e in enumerate(entries, 1):
            pipe.zincrby(f"{{{prefix}:raw}}:w", e.points, keys.member(e.citizen_id))
            if i % 500 == 0:
                pipe.execute()
        pipe.execute()
        raw = time.perf_counter() - start
        boards2 = Boards(client, settings_for(prefix + "s"))
        start = time.perf_counter()
        for e in single:
            boards2.apply([e])
        lua1 = time.perf_counter() - start
        start = time.perf_counter()
        for e in single:
            client.zincrby(f"{{{prefix}:raw}}:w1", e.points, keys.member(e.citizen_id))
        raw1 = time.perf_counter() - start
    finally:
        free_prefix(client, prefix)
    print(f"(a) award path, {n:,} entries pipelined (500 per round trip), 4 boards + summary per entry:")
    print(f"    Lua apply {rate(n, lua)}   raw ZINCRBY (1 board) {rate(n, raw)}   ratio {lua / raw:.2f}x the time")
    print(f"    replayed entries (guard hit) {rate(n, replay)}")
    print(f"    one entry per round trip, {len(single):,} entries: Lua apply {rate(len(single), lua1)}")
    print(f"    raw ZINCRBY {rate(len(single), raw1)}   ratio {lua1 / raw1:.2f}x the time")


def latencies(calls: list[tuple[Callable[[], object], Callable[[], object]]]) -> tuple[tuple[float, float], ...]:
    """Time pairs of calls, interleaved so both see the same server load; return (p50, p99) in ms of each side."""
    times: tuple[list[float], list[float]] = ([], [])
    for pair in calls:
        for side, call in zip(times, pair, strict=True):
            start = time.perf_counter()
            call()
            side.append((time.perf_counter() - start) * 1000)
    out = []
    for side in times:
        q = statistics.quantiles(side, n=100)
        out.append((q[49], q[98]))
    return tuple(out)


def memory_of(client: redis.Redis, prefix: str, gen: int, n: int) -> tuple[float, float]:
    """Bytes per citizen in boards (MEMORY USAGE, all elements) and in summaries (average of a sample)."""
    names = client.hkeys(keys.registry_key(prefix, gen))
    boards = sum(int(client.memory_usage(keys.board_key(prefix, gen, name), samples=0) or 0) for name in names)
    sample = random.Random(2).sample(range(1, n + 1), min(n, 2000))
    summary = statistics.mean(int(client.memory_usage(keys.summary_key(prefix, gen, c)) or 0) for c in sample)
    return boards / n, summary


def section_populations(client: redis.Redis, sizes: list[int], samples: int) -> None:
    """(b) standing latency and (d) memory at each size, growing one generation; (c) its rebuild time vs raw ZADD."""
    prefix = f"bench{RUN}p"
    s = settings_for(prefix)
    boards = Boards(client, s)
    built = 0.0
    done = 0
    try:
        before = int(client.info("memory")["used_memory"])
        for n in sizes:
            start = time.perf_counter()
            write_generation(client, prefix, 1, synthetic(n, done + 1))
            client.set(keys.gen_key(prefix), 1)  # the swap
            built += time.perf_counter() - start
            done = n
            used = (int(client.info("memory")["used_memory"]) - before) / n
            board_bytes, summary_bytes = memory_of(client, prefix, 1, n)
            pick = random.Random(3).sample(range(1, n + 1), samples)
            key = keys.board_key(prefix, 1, keys.weekly(WEEK))
            pairs: list[tuple[Callable[[], object], Callable[[], object]]] = [
                (partial(boards.standing, c, WEEK, 80), partial(client.zrank, key, keys.member(c))) for c in pick
            ]
            (p50, p99), (r50, r99) = latencies(pairs)
            print(f"{n:,} citizens:")
            print(f"  (b) standing() p50 {p50:.3f} ms  p99 {p99:.3f} ms  ({samples:,} lookups: weekly + all-time rank,")
            print(f"      neighbours, prize cut in one Lua call)   bare ZRANK p50 {r50:.3f} ms  p99 {r99:.3f} ms")
            print(f"  (d) memory {used:.0f} B/citizen (used_memory delta): boards {board_bytes:.0f} B + summary")
            print(
                f"      {summary_bytes:.0f} B (MEMORY USAGE)  ->  {used * 4_400_000 / 2**30:.2f} GiB at 4.4M citizens"
            )
        start = time.perf_counter()
        free_generation(client, prefix, 1)
        freed = time.perf_counter() - start
        raw = raw_zadd(client, prefix, synthetic(done))
    finally:
        free_prefix(client, prefix)
    print(f"  (c) rebuild of {done:,} citizens (Redis stage: fold, summaries, boards, registry, swap) {built:.1f} s")
    print(f"      = {rate(done, built)}   raw ZADD of the same members {raw:.1f} s   ratio {built / raw:.2f}x the time")
    print(f"      (freeing a generation of {done:,} citizens with UNLINK after a swap: {freed:.1f} s)")


def seed_sql(url: str, cases: int, citizens: int) -> int:
    """Write a ledger of `cases` awards (+5% reversals) for `citizens` into a fresh SQLite file."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    rnd = random.Random(4)
    tz = Settings().tz
    entries = 0
    with engine.begin() as conn:
        conn.execute(
            insert(Citizen),
            [
                {
                    "id": c,
                    "openid": f"o{c}",
                    "name": f"市民{c}",
                    "phone": None,
                    "district": DISTRICTS[c % len(DISTRICTS)],
                    "verified": c % 10 != 0,
                    "banned": False,
                    "snapshot_user": False,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for c in range(1, citizens + 1)
            ],
        )
        for start in range(1, cases + 1, 50_000):
            ids = range(start, min(cases, start + 49_999) + 1)
            rows = [(i, rnd.randint(1, citizens), T0 + timedelta(seconds=rnd.randint(0, 13 * 86_400))) for i in ids]
            conn.execute(
                insert(Case),
                [
                    {
                        "id": i,
                        "case_id": f"C{i}",
                        "reporter_id": cid,
                        "category": "street_lamp",
                        "description": "",
                        "coord_system": "wgs84",
                        "photos": [],
                        "status": "filed",
                        "status_at": at,
                        "reported_at": at,
                        "updated_at": at,
                    }
                    for i, cid, at in rows
                ],
            )
            ledger = []
            for i, cid, at in rows:
                week = str(week_of(at, tz))
                ledger.append(_ledger_row(i, cid, "valid_report", 1, week, at))
                if i % 20 == 0:  # voided later: the reversal is dated a day after
                    later = at + timedelta(days=1)
                    ledger.append(_ledger_row(i, cid, "void_reversal", -1, str(week_of(later, tz)), later))
            conn.execute(insert(LedgerEntry), ledger)
            entries += len(ledger)
    engine.dispose()
    return entries


def _ledger_row(case: int, cid: int, rule: str, points: int, week: str, at: datetime) -> dict[str, object]:
    return {
        "citizen_id": cid,
        "case_pk": case,
        "rule": rule,
        "points": points,
        "week": week,
        "reason": "bench",
        "created_at": at,
    }


def section_sql(client: redis.Redis, redis_url: str, cases: int, citizens: int) -> None:
    """(c) a full rebuild from a SQL ledger of `cases` cases."""
    prefix = f"bench{RUN}sql"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        start = time.perf_counter()
        entries = seed_sql(url, cases, citizens)
        seeded = time.perf_counter() - start
        s = Settings(leaderboard_key_prefix=prefix, redis_url=redis_url, database_url=url, outbox_dir=Path(tmp))
        container = bootstrap(s, clock=FixedClock(T0), redis_client=client)
        try:
            start = time.perf_counter()
            report = rebuild(container.db, container.boards)
            built = time.perf_counter() - start
            with container.read() as session:
                raw = raw_zadd(client, prefix, stream_ledger(session))
        finally:
            container.db.close()  # not container.close(): the Redis client is the caller's
            free_prefix(client, prefix)
    print(f"(c) rebuild from SQL (SQLite): {cases:,} cases = {entries:,} ledger entries, {report.citizens:,} citizens")
    print(f"    full rebuild {built:.1f} s ({rate(entries, built)} entries; stream, fold, write, swap, catch-up,")
    print(
        f"    free the old generation)   raw ZADD of the same members {raw:.2f} s   ratio {built / raw:.1f}x the time"
    )
    print(f"    (seeding the ledger took {seeded:.1f} s, not counted)")


def main() -> None:
    """Run every section and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="the smallest sizes (a smoke run)")
    size.add_argument("--quick", action="store_true", help="small sizes")
    args = parser.parse_args()
    sizes = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=60)
    info = client.info("server")
    print(f"Redis {info['redis_version']} at {url}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    start = time.perf_counter()
    section_award(client, sizes.entries)
    section_populations(client, list(sizes.populations), sizes.samples)
    section_sql(client, url, sizes.cases, sizes.citizens)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
