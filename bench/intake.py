"""Intake benchmark (not a test): set-based intake beside bare INSERT + COMMIT, and a timed history import.

    .venv/bin/python bench/intake.py --quick                 # throughput at batch sizes 1, 10, 100, 1000
    .venv/bin/python bench/intake.py --tiny                  # the smallest sizes (the smoke test)
    .venv/bin/python bench/intake.py --import-cases 350000   # also time `rewards intake import` of a generated export
    .venv/bin/python bench/intake.py --write-jsonl FILE --import-cases N   # only write the export (no database)
    .venv/bin/python bench/intake.py --profile-batches 50    # only run 50 batches of 100 (to run under py-spy)

Throughput: the same events (half `report.submitted`, half their `filed` verdict: case, citizen, history, audit,
ledger and the boards after commit) go through IntakeService.receive in batches of 1, 10, 100 and 1000 on one
connection, in-process (no HTTP: bench/e2e.py measures the webhook), beside a bare INSERT + COMMIT of each event's
JSON on one connection (autocommit) in the same run. Import: an export of N cases, each with its report and
verdict (80% filed, then dispatched, resolved, closed), one event a line, timed through the real command.
BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) names the server where a fresh database is created
and dropped; BENCH_REDIS_URL (default redis://127.0.0.1:6379/3) the Redis database (private prefix, unlinked).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _private import PrivateRun

from intake_adapter.service import IntakeService
from rewards.bootstrap import Container, bootstrap
from rewards.db import make_engine

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DISTRICTS = ["城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县"]
CATEGORIES = ["street_lamp", "road_damage", "illegal_parking", "overflowing_bin", "manhole_cover"]
BATCH_SIZES = (1, 10, 100, 1000)
SIZES = {"tiny": 200, "quick": 4_000}  # events per batch size (half reports, half their verdicts)


def report_event(n: int, at: datetime, citizens: int, tag: str) -> dict[str, Any]:
    """The report of case n, by one of `citizens` reporters (most report more than once)."""
    cid = 1 + (n * 2654435761) % citizens
    return {
        "event_id": f"r-{tag}{n}",
        "type": "report.submitted",
        "occurred_at": at.isoformat(),
        "case_id": f"{tag}{n}",
        "category": CATEGORIES[n % len(CATEGORIES)],
        "description": "路灯不亮，晚上很黑",
        "location": {"lat": 36.06 + (n % 1000) / 1e4, "lon": 103.83, "coord_system": "gcj02"},
        "district": DISTRICTS[cid % len(DISTRICTS)],
        "reporter": {"openid": f"o-{tag}{cid}", "name": f"市民{cid}", "verified": True},
    }


def status_event(n: int, status: str, at: datetime, tag: str, **extra: Any) -> dict[str, Any]:
    """A status change of case n."""
    event = {"event_id": f"{status}-{tag}{n}", "type": "case.status_changed", "case_id": f"{tag}{n}"}
    return {**event, "occurred_at": at.isoformat(), "status": status, **extra}


def case_history(n: int, start: datetime, citizens: int, tag: str) -> list[dict[str, Any]]:
    """Every event of case n as the case system's export has it: report, verdict, and a filed case's handling."""
    at = start + timedelta(minutes=n)
    events = [report_event(n, at, citizens, tag)]
    if n % 5 == 4:
        return [*events, status_event(n, "refused", at + timedelta(hours=1), tag, verdict="invalid", note="不属实")]
    dept = {"department": "城关区市政所"}
    return [
        *events,
        status_event(n, "filed", at + timedelta(hours=1), tag),
        status_event(n, "dispatched", at + timedelta(hours=2), tag, **dept),
        status_event(n, "resolved", at + timedelta(days=1), tag, **dept, note="已修复"),
        status_event(n, "closed", at + timedelta(days=2), tag),
    ]


def write_export(path: Path, cases: int, start: datetime) -> int:
    """Write an export of `cases` cases in time order (one event a line); return the number of events."""
    count = 0
    with path.open("w", encoding="utf-8") as f:
        # cases overlap in time, as in a real export: the events of a window of cases are sorted together
        window = 200
        for first in range(0, cases, window):
            events = [
                e for n in range(first, min(first + window, cases)) for e in case_history(n, start, cases // 3 + 1, "H")
            ]
            events.sort(key=lambda e: e["occurred_at"])
            for e in events:
                f.write(json.dumps(e, ensure_ascii=False) + "\n")
            count += len(events)
    return count


def pairs(count: int, at: datetime, citizens: int, tag: str) -> list[dict[str, Any]]:
    """`count` events: reports and their `filed` verdicts, each verdict right after its report."""
    out: list[dict[str, Any]] = []
    for n in range(count // 2):
        out.append(report_event(n, at, citizens, tag))
        out.append(status_event(n, "filed", at + timedelta(minutes=1), tag))
    return out


def chunks(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(events), size):
        yield events[i : i + size]


class Bench(PrivateRun):
    """One run: a private database, key prefix and folder (PrivateRun)."""

    def __init__(self, pg_url: str, redis_url: str) -> None:
        super().__init__("intake", pg_url, redis_url)
        self.now = datetime.now(UTC)
        self.container: Container | None = None

    def prepare(self) -> None:
        self.create_database()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_bare_inbox (id bigserial PRIMARY KEY, event_id varchar(128) NOT NULL UNIQUE,"
                " payload text NOT NULL, received_at timestamp NOT NULL)"
            )
        self.container = bootstrap(self.settings(), engine=make_engine(self.settings().database_url))

    def intake(self, events: list[dict[str, Any]], size: int) -> float:
        """Send the events through IntakeService.receive in batches of `size`; return seconds (all must apply)."""
        assert self.container is not None
        svc = IntakeService.of(self.container)
        start = time.perf_counter()
        for batch in chunks(events, size):
            outcome = svc.receive(batch)
            bad = [r for r in outcome.results if r.result != "applied"]
            if bad:
                raise RuntimeError(f"intake refused events: {bad[:3]}")
        return time.perf_counter() - start

    def bare(self, events: list[dict[str, Any]]) -> float:
        """INSERT + COMMIT of each event's JSON, one connection (autocommit); return seconds."""
        rows = [(e["event_id"], json.dumps(e, ensure_ascii=False), self.now.replace(tzinfo=None)) for e in events]
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            start = time.perf_counter()
            for row in rows:
                cur.execute("INSERT INTO bench_bare_inbox (event_id, payload, received_at) VALUES (%s, %s, %s)", row)
            took = time.perf_counter() - start
            cur.execute("TRUNCATE bench_bare_inbox")
        return took

    def throughput(self, per_size: int) -> list[str]:
        lines = [
            f"Intake throughput, {per_size:,} events per batch size (half reports, half their `filed` verdicts),"
            " in-process on one connection, beside bare INSERT + COMMIT of the same events' JSON on one connection:",
            "",
            "| batch size | intake events/s | bare INSERT + COMMIT /s | ratio |",
            "|---:|---:|---:|---:|",
        ]
        at = self.now - timedelta(days=1)
        for size in BATCH_SIZES:
            events = pairs(per_size, at, max(per_size // 6, 1), f"B{size}-")
            ours = len(events) / self.intake(events, size)
            base = len(events) / self.bare(events)
            lines.append(f"| {size:,} | {ours:,.0f} | {base:,.0f} | {ours / base:.2f}× |")
            print(f"[intake] batch size {size}: {ours:,.0f} events/s, bare {base:,.0f}/s", file=sys.stderr, flush=True)
        return lines

    def import_time(self, cases: int) -> list[str]:
        export = self.tmp / "history.jsonl"
        events = write_export(export, cases, self.now - timedelta(days=400))
        cmd = [str(Path(sys.executable).parent / "rewards"), "intake", "import", str(export), "--no-progress"]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=self.command_env(), capture_output=True, text=True, check=False)
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"import failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
        again = subprocess.run(cmd, cwd=ROOT, env=self.command_env(), capture_output=True, text=True, check=False)
        if again.returncode != 0 or "0 event(s) applied" not in again.stdout:
            raise RuntimeError(f"a second run changed something: {again.stdout[-2000:]}")
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM cases WHERE case_id LIKE 'H%%'").fetchone()
        if row is None or row[0] != cases:
            raise RuntimeError(f"import: {row} cases stored, {cases} expected")
        return [
            f"History import (`rewards intake import`, batches of 500): {cases:,} cases, {events:,} events in"
            f" {took:,.1f} s = {events / took:,.0f} events/s ({cases / took:,.0f} cases/s);"
            f" the second run over the same file applied nothing ({done.stdout.strip().splitlines()[-1]})",
        ]

    def cleanup(self) -> None:
        if self.container is not None:
            self.container.close()
        freed = self.drop()
        print(f"[intake] unlinked {freed:,} keys, dropped {self.db}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="the smallest sizes (a smoke run)")
    size.add_argument("--quick", action="store_true", help=f"{SIZES['quick']:,} events per batch size (default)")
    parser.add_argument("--import-cases", type=int, default=None, help="time an import of an export of N cases")
    parser.add_argument("--write-jsonl", type=Path, help="only write the export of --import-cases cases here")
    parser.add_argument("--profile-batches", type=int, default=0, help="only run this many batches of 100")
    args = parser.parse_args(argv)
    if args.write_jsonl is not None:
        n = write_export(args.write_jsonl, args.import_cases or 1000, datetime.now(UTC) - timedelta(days=400))
        print(f"wrote {n:,} events to {args.write_jsonl}")
        return 0
    bench = Bench(
        os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
    )
    out: list[str] = []
    try:
        bench.prepare()
        if args.profile_batches:
            events = pairs(100 * args.profile_batches, bench.now - timedelta(days=1), 500, "P")
            took = bench.intake(events, 100)
            print(f"{args.profile_batches} batches of 100: {took * 1000 / args.profile_batches:.1f} ms per batch")
            return 0
        out += bench.throughput(SIZES["tiny" if args.tiny else "quick"])
        cases = args.import_cases if args.import_cases is not None else (100 if args.tiny else None)
        if cases:
            out += ["", *bench.import_time(cases)]
    finally:
        bench.cleanup()
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
