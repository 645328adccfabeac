"""`bench/intake_import.py --tiny`: a generated history imported through `rewards intake import`, timed beside COPY
and bare INSERT + COMMIT of the same lines, and a second run that applies nothing."""

from __future__ import annotations

import redis

from tests.e2e.test_bench_smoke import NUM, assert_lines, run_bench

IMPORT_LINES = [
    rf"^History import \(`rewards intake import`, batches of 500, fresh database\): 100 cases \({NUM} valid, {NUM}"
    rf" invalid, {NUM} duplicate\), {NUM} events",
    rf"^\| `rewards intake import` \| {NUM} s \| {NUM} \| — \|$",
    rf"^\| bare INSERT \+ COMMIT of the same lines, 500 a transaction \| {NUM} s \| {NUM} \| {NUM}× \|$",
    rf"^\| COPY of the same lines \| {NUM} s \| {NUM} \| {NUM}× \|$",
    r"Second run: imported [\d,]+ line\(s\): 0 event\(s\) applied, [\d,]+ already applied, 0 line\(s\) refused\.",
    rf"^At this rate 350,000 cases \({NUM} events\) take {NUM} h\.$",
]


def test_import_benchmark_prints_the_import_beside_its_baselines(redis_server: redis.Redis) -> None:
    assert_lines(IMPORT_LINES, run_bench("intake_import.py").stdout)
