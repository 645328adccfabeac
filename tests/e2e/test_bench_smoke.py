"""Smoke run of the end-to-end benchmark (bench/e2e.py --quick) so that it cannot rot unnoticed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
ROWS = [
    r"\| `rebuild` of 20,000 citizens .* \| [\d.]+ s .* \| raw ZADD of the same [\d,]+ members .* packed by hiredis",
    r"\| `rebuild` \(as above\) \| [\d.]+ s \| raw ZADD of the same [\d,]+ members .* through redis-py's pipeline",
    r"\| weekly close of \d{4}-W\d{2} \(5,000 valid cases, [\d,]+ eligible participants.* \| [\d.]+ s \| bare SQL",
    r"\| weekly close \(as above\) \| [\d.]+ s \| raw pipelined ZADD of the week's [\d,]+ members",
    r"\| `GET /api/v1/citizens/\{openid\}/standing` \(20,000 citizens on the boards.* \| [\d,]+ req/s \| bare endpoint",
    r"\| standing latency p50 / p99 at 8 connections \| [\d.]+ / [\d.]+ ms \| bare ZREVRANK endpoint",
    r"\| standing latency p50 / p99 at 1 connection \| [\d.]+ / [\d.]+ ms \| bare ZREVRANK endpoint",
    r"\| verdicts through HTTP .* 300 verdicts\) \| [\d,]+/s .* \| the same count of bare INSERT \+ COMMIT",
    r"\| intake events .* 600 events\) \| [\d,]+ events/s .* \| bare INSERT \+ COMMIT of each event's JSON",
    r"\| web worker peak RSS .* \| \d+ MiB \|",
    r"\| Redis memory per citizen .* \| \d+ B \|",
]


@pytest.mark.slow
def test_quick_benchmark_prints_every_row(redis_server: redis.Redis) -> None:
    """`bench/e2e.py --quick` exits 0 and prints the whole table with a figure and a ratio in every row."""
    env = {**os.environ, "BENCH_PG_URL": PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "e2e.py"), "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = done.stdout
    for row in ROWS:
        assert re.search(row, out), f"missing row {row!r} in:\n{out}"
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| measure")]
    assert len(table) == len(ROWS), out
    ratios = [line.split(" | ")[4] for line in table[:9]]
    assert all(re.match(r"[\d.]+×", r) for r in ratios), ratios
    assert re.search(r"^Targets: rebuild .*; weekly close .*; standing .*\.$", out, re.M), out
    assert "unlinked" in done.stderr  # clean-up ran
