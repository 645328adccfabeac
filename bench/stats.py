"""Benchmark (not a test) of the public city-management record: /stats over a year of Lanzhou-sized history.

    .venv/bin/python bench/stats.py           # 350,000 cases over 52 weeks, 8 districts, 30 departments
    .venv/bin/python bench/stats.py --tiny    # the same code at 3,000 cases (the smoke test)

A fresh PostgreSQL database (BENCH_PG_URL, default postgresql://postgres@127.0.0.1:5432/test names the server) is
created, migrated, seeded with server-side INSERT … SELECT generate_series (reports, verdicts, dispatches with a
36-hour deadline, resolutions, closings, ledger lines, ratings), and dropped at the end; Redis (BENCH_REDIS_URL)
only serves the rate limiter, under a private key prefix unlinked at the end. The record never reads Redis.

Measured in-process through the ASGI app (starlette's TestClient): the first /stats (it computes and seals the
closed weeks of the trend), then /stats with its cache warm, each beside a bare `SELECT count(*)` of the same case
rows in the same run (the ratio is the record's time over the bare count's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from _private import PrivateRun
from fastapi.testclient import TestClient
from sqlalchemy import text

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.db import make_engine

DISTRICTS = ["城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县"]
UNITS = ["城管局", "市政所", "环卫所", "园林所", "交警大队", "综合执法局"]
DEPARTMENTS = [f"{d}{u}" for d in DISTRICTS[:4] for u in UNITS[:5]] + [f"{d}综合执法局" for d in DISTRICTS[4:]]
DEPARTMENTS += ["市供电公司", "市水务集团", "市燃气公司", "市园林局", "市住建局", "市交通局"]
SIZES = {"full": (350_000, 120_000, 52), "tiny": (3_000, 1_000, 52)}  # cases, citizens, weeks
WARM_RUNS = {"full": 20, "tiny": 5}
TARGET_SECONDS = 1.0


def naive(t: datetime) -> datetime:
    """An aware instant as the naive UTC the schema stores."""
    return t.astimezone(UTC).replace(tzinfo=None)


def seed(dsn: str, cases: int, citizens: int, weeks: int, now: datetime) -> dict[str, int]:
    """Write the year of history with server-side INSERT … SELECT; return the row counts."""
    start = now - timedelta(weeks=weeks)
    span = int((now - timedelta(hours=1) - start).total_seconds())
    p: dict[str, Any] = {
        "n": cases,
        "m": citizens,
        "d": DISTRICTS,
        "dept": DEPARTMENTS[:30],
        "start": naive(start),
        "now": naive(now),
        "span": span,
    }
    steps = [
        "INSERT INTO citizens (id, openid, name, phone, district, verified, banned, snapshot_user, created_at,"
        " updated_at) SELECT g, 'o' || g, '市民' || g, NULL, (%(d)s::text[])[g %% 8 + 1], g %% 10 <> 0, false,"
        " false, %(start)s, %(start)s FROM generate_series(1, %(m)s::int) g",
        # one plan row per case: when each step happens (NULL: not yet, or never)
        "CREATE TEMP TABLE plan AS SELECT g, r, 1 + (g::bigint * 2654435761) %% %(m)s AS who,"
        " (%(d)s::text[])[g %% 8 + 1] AS district, (%(dept)s::text[])[(g * 31) %% 30 + 1] AS dept,"
        " g %% 10 = 0 AS refused, v, v + ((g * 17) %% 240 + 30) * interval '1 minute' AS dsp,"
        " v + ((g * 17) %% 240 + 30 + (g * 13) %% 1800 + 240) * interval '1 minute' AS res,"
        " v + ((g * 17) %% 240 + 30 + (g * 13) %% 1800 + 240 + (g * 7) %% 1440 + 120) * interval '1 minute' AS cls"
        " FROM (SELECT g, r, r + (g %% 180 + 10) * interval '1 minute' AS v FROM (SELECT g, %(start)s"
        " + ((g::bigint - 1) * %(span)s / %(n)s) * interval '1 second' AS r FROM generate_series(1, %(n)s::int) g)"
        " a) b",
        "UPDATE plan SET v = NULL WHERE v >= %(now)s",
        "UPDATE plan SET dsp = NULL WHERE v IS NULL OR refused OR dsp >= %(now)s",
        "UPDATE plan SET res = NULL WHERE dsp IS NULL OR res >= %(now)s",
        "UPDATE plan SET cls = NULL WHERE res IS NULL OR cls >= %(now)s",
        "INSERT INTO cases (id, case_id, reporter_id, category, description, coord_system, photos, status, status_at,"
        " verdict, district, department, deadline_at, reported_at, updated_at)"
        " SELECT g, 'S' || g, who, 'street_lamp', '', 'wgs84', '[]',"
        " CASE WHEN cls IS NOT NULL THEN 'closed' WHEN res IS NOT NULL THEN 'resolved' WHEN dsp IS NOT NULL"
        " THEN 'dispatched' WHEN v IS NULL THEN 'reported' WHEN refused THEN 'refused' ELSE 'filed' END,"
        " coalesce(cls, res, dsp, v, r), CASE WHEN v IS NULL THEN NULL WHEN refused THEN 'invalid' ELSE 'valid' END,"
        " district, CASE WHEN dsp IS NOT NULL THEN dept END, dsp + interval '36 hours', r,"
        " coalesce(cls, res, dsp, v, r) FROM plan",
        "INSERT INTO case_history (case_pk, status, occurred_at, recorded_at, actor, source, department, applied)"
        " SELECT g, 'reported', r, r, 'bench', 'intake', NULL, true FROM plan UNION ALL"
        " SELECT g, CASE WHEN refused THEN 'refused' ELSE 'filed' END, v, v, 'bench', 'console', NULL, true"
        " FROM plan WHERE v IS NOT NULL UNION ALL"
        " SELECT g, 'dispatched', dsp, dsp, 'bench', 'intake', dept, true FROM plan WHERE dsp IS NOT NULL UNION ALL"
        " SELECT g, 'resolved', res, res, 'bench', 'intake', NULL, true FROM plan WHERE res IS NOT NULL UNION ALL"
        " SELECT g, 'closed', cls, cls, 'bench', 'intake', NULL, true FROM plan WHERE cls IS NOT NULL",
        "INSERT INTO ledger_entries (citizen_id, case_pk, rule, points, week, reason, created_at)"
        " SELECT who, g, 'valid_report', 1, to_char(v AT TIME ZONE 'UTC' AT TIME ZONE 'Asia/Shanghai',"
        " 'IYYY-\"W\"IW'), '有效举报', v FROM plan WHERE v IS NOT NULL AND NOT refused",
        "INSERT INTO case_ratings (case_pk, citizen_id, level, channel, district, department, case_status, rated_at)"
        " SELECT g, who, CASE WHEN g %% 10 < 7 THEN 'satisfied' WHEN g %% 10 < 9 THEN 'basic' ELSE 'unsatisfied'"
        " END, 'wechat', district, dept, 'closed', cls + interval '3 hours' FROM plan"
        " WHERE cls IS NOT NULL AND g %% 3 = 0 AND cls + interval '3 hours' < %(now)s",
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for step in steps:
            conn.execute(step, p)  # type: ignore[arg-type]
        for table in ("citizens", "cases", "case_history", "ledger_entries", "case_ratings"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")  # type: ignore[arg-type]
        conn.execute("ANALYZE")
        counts = {}
        for table in ("cases", "case_history", "ledger_entries", "case_ratings"):
            row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
            counts[table] = int(row[0]) if row else 0
    return counts


def get(http: TestClient, path: str) -> None:
    """GET a page of the record; refuse anything but a 200 with the record in it."""
    r = http.get(path)
    if r.status_code != 200 or not ("全市概况" in r.text or path.startswith("/api/")):
        raise RuntimeError(f"{path} answered {r.status_code}: {r.text[:300]}")


def timed(call: Any) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    """Seed, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="3,000 cases (the smoke test)")
    size = "tiny" if parser.parse_args().tiny else "full"
    n_cases, n_citizens, weeks = SIZES[size]
    pg = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
    private = PrivateRun("stats", pg, redis_url)
    private.create_database()
    try:
        engine = make_engine(private.database_url)
        now = datetime.now(UTC)
        began = time.perf_counter()
        counts = seed(private.dsn, n_cases, n_citizens, weeks, now)
        seeded = time.perf_counter() - began
        settings = private.settings().model_copy(update={"rate_limit_per_ip": 10**9})
        runs = WARM_RUNS[size]
        c = bootstrap(settings, engine=engine)
        with TestClient(create_app(c)) as http:
            cold = timed(lambda: get(http, "/stats"))
            warm = [timed(lambda: get(http, "/stats")) for _ in range(runs)]
            get(http, "/api/v1/stats")  # seals the closed months of the month trend
            warm_api = [timed(lambda: get(http, "/api/v1/stats")) for _ in range(runs)]
        c.close()
        # the same page when this week's figures are recomputed on every request (the sealed weeks are read)
        live = bootstrap(settings.model_copy(update={"stats_live_seconds": 0.0}), engine=engine)
        with TestClient(create_app(live)) as http:
            recomputed = [timed(lambda: get(http, "/stats")) for _ in range(runs)]
        live.close()
        with engine.connect() as conn:

            def bare() -> None:
                conn.execute(text("SELECT count(*) FROM cases")).scalar_one()

            bare_times = [timed(bare) for _ in range(runs)]
        engine.dispose()
        p50, p50_api, p50_live, p50_bare = (statistics.median(x) for x in (warm, warm_api, recomputed, bare_times))
        print(
            f"{counts['cases']:,} cases over {weeks} weeks ({len(DISTRICTS)} districts, 30 departments),"
            f" {counts['case_history']:,} history steps, {counts['ledger_entries']:,} ledger lines,"
            f" {counts['case_ratings']:,} ratings; seeded in {seeded:.1f} s"
        )
        print(f"cold GET /stats (computes and seals the trend's closed weeks)  {cold:.3f} s")
        ratio, ratio_api = p50 / p50_bare, p50_api / p50_bare
        print(
            f"warm GET /stats p50 / max of {runs}  {p50:.3f} / {max(warm):.3f} s   ratio {ratio:,.1f}x the bare count"
        )
        print(f"warm GET /api/v1/stats p50 of {runs}  {p50_api:.3f} s   ratio {ratio_api:,.1f}x the bare count")
        print(
            f"GET /stats recomputing this week live (REWARDS_STATS_LIVE_SECONDS=0) p50 of {runs}  {p50_live:.3f} s"
            f"   ratio {p50_live / p50_bare:,.1f}x the bare count"
        )
        print(f"bare SELECT count(*) FROM cases ({counts['cases']:,} rows) p50 of {runs}  {p50_bare:.4f} s")
        print(f"Target: warm /stats under {TARGET_SECONDS:.0f} s: {'met' if p50 < TARGET_SECONDS else 'NOT met'}.")
    finally:
        freed = private.drop()
        print(f"dropped {private.db}, unlinked {freed} Redis keys", file=sys.stderr)


if __name__ == "__main__":
    main()
