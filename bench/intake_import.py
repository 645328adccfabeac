"""History import benchmark (not a test): `rewards intake import` of a generated case-system export, timed.

    .venv/bin/python bench/intake_import.py --cases 20000          # a short run
    .venv/bin/python bench/intake_import.py --cases 350000         # Lanzhou's history (hours: see the closing note)
    .venv/bin/python bench/intake_import.py --cases 2000 --write-only history.jsonl   # only write the export

The export is what the city's case system hands over when a city is onboarded: one event a line, in time order
(the events of cases open at the same time interleave), each case a `report.submitted` and the status changes that
ended it: about 70% filed as valid (then dispatched, processing, resolved, closed; some sent back once), 20%
refused as invalid, 10% refused as duplicates of an earlier report nearby. Citizens report several times (a third
of reports come from a citizen seen before), a few reports are anonymous, most carry a location, an address and
some photos. A fresh database is created (and dropped), the real command imports the file in a subprocess (batches
of 500, one transaction each), and the same lines are written to a bare table twice in the same run as baselines:
COPY, and INSERT + COMMIT in batches of 500 (the import's own transaction size, no processing). A second run of
the command over the same file must apply nothing. While the import runs its progress (the state file the command
keeps) is printed every 30 s, so a long run shows its rate early.

BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test) names the server where the database is created;
BENCH_REDIS_URL (default redis://127.0.0.1:6379/3) the Redis database (a private key prefix, unlinked at the end).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from _private import PrivateRun

ROOT = Path(__file__).resolve().parent.parent
DISTRICTS = ["城关区", "七里河区", "西固区", "安宁区", "红古区", "永登县", "皋兰县", "榆中县"]
CATEGORIES = ["street_lamp", "road_damage", "illegal_parking", "overflowing_bin", "manhole_cover"]
DEPARTMENTS = ["市政管理处", "城管执法局", "环卫处", "交警支队", "供电公司"]
DESCRIPTIONS = [
    "路灯不亮，晚上很黑，行人不安全",
    "路面塌陷一个大坑，电动车容易摔倒",
    "小区门口长期有车辆违停，堵住消防通道",
    "垃圾桶满了好几天没人清运，味道很大",
    "井盖破损，有孩子差点踩空",
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
BATCH = 500
CHINA = timezone(timedelta(hours=8))  # the case system exports local time with its offset


@dataclass(frozen=True)
class Export:
    """A written export: its path, lines, cases and how the cases ended."""

    path: Path
    events: int
    cases: int
    verdicts: dict[str, int]
    size: int


def _at(instant: datetime) -> str:
    return instant.astimezone(CHINA).isoformat(timespec="seconds")


def case_events(n: int, reported: datetime, rng: random.Random, citizens: int, seen: list[int]) -> list[Any]:
    """Every event of case n, as the case system exported it, each as (instant, sequence, event)."""
    case_id = f"LZ{reported:%Y%m%d}{n:07d}"
    if seen and rng.random() < 0.33:
        cid = rng.choice(seen[-5000:])  # a citizen who reported before (recently, most likely)
    else:
        cid = rng.randrange(1, citizens + 1)
        seen.append(cid)
    report: dict[str, Any] = {
        "event_id": f"{case_id}-submitted",
        "type": "report.submitted",
        "occurred_at": _at(reported),
        "case_id": case_id,
        "category": CATEGORIES[n % len(CATEGORIES)],
        "description": DESCRIPTIONS[n % len(DESCRIPTIONS)],
        "district": DISTRICTS[cid % len(DISTRICTS)],
    }
    if rng.random() < 0.95:
        lat, lon = 36.03 + rng.random() * 0.1, 103.73 + rng.random() * 0.2
        address = f"{report['district']}{rng.randrange(1, 300)}号附近"
        report["location"] = {"lat": round(lat, 6), "lon": round(lon, 6), "coord_system": "gcj02", "address": address}
    if rng.random() < 0.6:
        report["photos"] = [f"https://img.example.cn/{case_id}/{k}.jpg" for k in range(rng.randrange(1, 4))]
    if rng.random() < 0.97:  # a few reports come in by phone, anonymously
        name = SURNAMES[cid % len(SURNAMES)] + "先生女士"[cid % 2 * 2 : cid % 2 * 2 + 2]
        report["reporter"] = {"openid": f"oLZ{cid:08d}", "name": name, "verified": cid % 10 != 0}
    events: list[dict[str, Any]] = [report]

    def status(status: str, at: datetime, **extra: Any) -> None:
        event = {"event_id": f"{case_id}-{status}-{len(events)}", "type": "case.status_changed", "case_id": case_id}
        events.append({**event, "occurred_at": _at(at), "status": status, **extra})

    at = reported + timedelta(minutes=rng.randrange(10, 600))
    roll = rng.random()
    if roll < 0.2:
        status("refused", at, verdict="invalid", note="经核实，问题不存在")
        return events
    if roll < 0.3 and n > 0:
        original = f"LZ{ORIGINS[n - 1][0]:%Y%m%d}{ORIGINS[n - 1][1]:07d}"  # the report just before, in time
        status("refused", at, verdict="duplicate", duplicate_of=original, note="重复上报")
        return events
    dept = DEPARTMENTS[n % len(DEPARTMENTS)]
    status("filed", at)
    at += timedelta(hours=rng.randrange(1, 12))
    status("dispatched", at, department=dept, deadline=_at(at + timedelta(days=3)))
    at += timedelta(hours=rng.randrange(1, 24))
    status("processing", at, department=dept)
    if rng.random() < 0.08:
        at += timedelta(hours=rng.randrange(1, 24))
        status("resolved", at, department=dept, note="已处理")
        at += timedelta(hours=rng.randrange(1, 12))
        status("sent_back", at, department=dept, note="群众反映未修好")
    at += timedelta(hours=rng.randrange(1, 48))
    status("resolved", at, department=dept, note="已修复")
    status("closed", at + timedelta(days=1))
    return events


ORIGINS: list[tuple[datetime, int]] = []  # (reported, n) of every case so far: a duplicate points at an earlier one


def history(cases: int, start: datetime, seed: int = 13) -> Iterator[dict[str, Any]]:
    """The events of `cases` cases in time order (a merge: cases overlap for days)."""
    rng = random.Random(seed)
    citizens = max(cases * 2 // 3, 1)
    seen: list[int] = []
    span = timedelta(days=3 * 365) / max(cases, 1)  # three years of reports
    pending: list[tuple[datetime, int, dict[str, Any]]] = []
    order = 0
    ORIGINS.clear()
    for n in range(cases):
        reported = start + span * n
        while pending and pending[0][0] <= reported:
            yield heapq.heappop(pending)[2]
        ORIGINS.append((reported, n))
        for event in case_events(n, reported, rng, citizens, seen):
            order += 1
            heapq.heappush(pending, (datetime.fromisoformat(event["occurred_at"]), order, event))
    while pending:
        yield heapq.heappop(pending)[2]


def write_export(path: Path, cases: int, start: datetime) -> Export:
    """Write the export (one event a line); return what it holds."""
    events, verdicts = 0, {"valid": 0, "invalid": 0, "duplicate": 0}
    with path.open("w", encoding="utf-8") as f:
        for event in history(cases, start):
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            events += 1
            if event.get("status") == "filed":
                verdicts["valid"] += 1
            elif event.get("status") == "refused":
                verdicts[event["verdict"]] += 1
    return Export(path, events, cases, verdicts, path.stat().st_size)


class Bench(PrivateRun):
    """One run: a fresh database, a private key prefix, a temporary folder (PrivateRun)."""

    def __init__(self, pg_url: str, redis_url: str) -> None:
        super().__init__("import", pg_url, redis_url)

    def prepare(self) -> None:
        self.create_database()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_bare_lines (id bigserial PRIMARY KEY, event_id varchar(128) NOT NULL UNIQUE,"
                " payload text NOT NULL)"
            )

    def baselines(self, export: Export) -> tuple[float, float]:
        """Seconds to COPY the lines into a bare table, and to INSERT + COMMIT them in batches of 500."""
        rows = []
        with export.path.open(encoding="utf-8") as f:
            for line in f:
                rows.append((json.loads(line)["event_id"], line.rstrip("\n")))
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            start = time.perf_counter()
            with conn.cursor() as cur, cur.copy("COPY bench_bare_lines (event_id, payload) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            copied = time.perf_counter() - start
            conn.execute("TRUNCATE bench_bare_lines")
        with psycopg.connect(self.dsn) as conn, conn.cursor() as cur:
            start = time.perf_counter()
            for i in range(0, len(rows), BATCH):
                cur.executemany("INSERT INTO bench_bare_lines (event_id, payload) VALUES (%s, %s)", rows[i : i + BATCH])
                conn.commit()
            inserted = time.perf_counter() - start
            cur.execute("TRUNCATE bench_bare_lines")
            conn.commit()
        return copied, inserted

    def import_file(self, export: Export, every: float = 30.0) -> tuple[float, str]:
        """Run `rewards intake import` on the export; print its progress every `every` s; return (seconds, summary)."""
        cmd = [str(Path(sys.executable).parent / "rewards"), "intake", "import", str(export.path), "--no-progress"]
        state = export.path.with_name(export.path.name + ".import-state.json")
        log = self.tmp / "import.log"
        start = time.perf_counter()
        shown = start
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.command_env(), stdout=out, stderr=subprocess.STDOUT)
            while proc.poll() is None:
                time.sleep(0.5)
                if time.perf_counter() - shown >= every:
                    shown = time.perf_counter()
                    progress(state, export, shown - start)
        took = time.perf_counter() - start
        text = log.read_text(encoding="utf-8", errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"import failed ({proc.returncode}): {text[-3000:]}")
        summary = [line for line in text.splitlines() if line.startswith("imported ")]
        return took, summary[0] if summary else text.strip().splitlines()[-1]

    def again(self, export: Export) -> str:
        """A second run over the same file from its first line (--restart): it must apply nothing."""
        cmd = [str(Path(sys.executable).parent / "rewards"), "intake", "import", str(export.path), "--no-progress"]
        cmd.append("--restart")
        done = subprocess.run(cmd, cwd=ROOT, env=self.command_env(), capture_output=True, text=True, check=False)
        if done.returncode != 0 or " 0 event(s) applied" not in done.stdout:
            raise RuntimeError(f"a second run changed something: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return next(line for line in done.stdout.splitlines() if line.startswith("imported "))

    def check(self, export: Export) -> dict[str, int]:
        """What the database holds after the import (every case stored, every verdict given)."""
        with psycopg.connect(self.dsn) as conn:
            counts = {
                "cases": conn.execute("SELECT count(*) FROM cases").fetchone(),
                "valid": conn.execute("SELECT count(*) FROM cases WHERE verdict = 'valid'").fetchone(),
                "ledger": conn.execute("SELECT count(*) FROM ledger_entries").fetchone(),
                "citizens": conn.execute("SELECT count(*) FROM citizens").fetchone(),
                "history": conn.execute("SELECT count(*) FROM case_history").fetchone(),
            }
        got = {k: int(v[0]) if v else 0 for k, v in counts.items()}
        if got["cases"] != export.cases or got["valid"] != export.verdicts["valid"]:
            raise RuntimeError(f"import stored {got}, expected {export.cases} cases, {export.verdicts} verdicts")
        return got

    def cleanup(self) -> None:
        freed = self.drop()
        print(f"[import] unlinked {freed:,} keys, dropped {self.db}", file=sys.stderr)


def progress(state: Path, export: Export, seconds: float) -> None:
    """Print how far the import got (from the state file the command writes after every batch) and its rate."""
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    lines = int(data["lines_done"])
    rate = lines / seconds if seconds > 0 else 0.0
    left = (export.events - lines) / rate if rate > 0 else float("inf")
    print(
        f"[import] {seconds:,.0f} s: {lines:,} of {export.events:,} lines ({rate:,.0f}/s), ~{left / 60:,.0f} min left",
        file=sys.stderr,
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000, help="cases in the export (Lanzhou: 350,000)")
    parser.add_argument("--write-only", type=Path, help="only write the export here (no database)")
    parser.add_argument("--tiny", action="store_true", help="100 cases (the smoke test)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.cases = 100
    start = datetime(2022, 1, 1, tzinfo=CHINA)
    if args.write_only is not None:
        export = write_export(args.write_only, args.cases, start)
        print(f"wrote {export.events:,} events of {export.cases:,} cases ({export.verdicts}) to {export.path}")
        return 0
    bench = Bench(
        os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
    )
    try:
        bench.prepare()
        began = time.perf_counter()
        export = write_export(bench.tmp / "history.jsonl", args.cases, start)
        written = time.perf_counter() - began
        print(f"[import] wrote {export.events:,} events of {export.cases:,} cases in {written:.1f} s", file=sys.stderr)
        copied, inserted = bench.baselines(export)
        took, summary = bench.import_file(export)
        stored = bench.check(export)
        second = bench.again(export)
    finally:
        bench.cleanup()
    n = export.events
    v = export.verdicts
    print(
        "\n".join(
            [
                f"History import (`rewards intake import`, batches of {BATCH}, fresh database): {export.cases:,} cases"
                f" ({v['valid']:,} valid, {v['invalid']:,} invalid, {v['duplicate']:,} duplicate), {n:,} events,"
                f" {export.size / 2**20:,.0f} MiB",
                "",
                "| what | time | events/s | ratio |",
                "|---|---:|---:|---:|",
                f"| `rewards intake import` | {took:,.1f} s | {n / took:,.0f} | — |",
                f"| bare INSERT + COMMIT of the same lines, {BATCH} a transaction | {inserted:,.1f} s"
                f" | {n / inserted:,.0f} | {inserted / took:.3f}× |",
                f"| COPY of the same lines | {copied:,.1f} s | {n / copied:,.0f} | {copied / took:.3f}× |",
                "",
                f"Import: {summary}. Stored: {stored}. Second run: {second}.",
                f"At this rate 350,000 cases ({n / export.cases * 350_000:,.0f} events) take"
                f" {n / export.cases * 350_000 / (n / took) / 3600:,.1f} h.",
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
