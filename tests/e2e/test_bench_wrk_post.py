"""bench/_common.py's wrk POST phase (the verdicts): every request is sent exactly once with its body and headers,
every one sent is answered before wrk stops, and any answer other than 200 is counted as an error, as the Python
client counts it. Skipped where wrk is not installed (`apt-get install wrk`)."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from _common import load, only_ok

from tests.fakes.http_server import serving

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


class Handler(BaseHTTPRequestHandler):
    """POST /ok/… with the bearer token and a JSON body: 200; without the token 401; /bad/…: 409; keep-alive."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[Counter[tuple[str, str]]] = Counter()
    lock = threading.Lock()
    delay = 0.0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        with Handler.lock:
            Handler.seen[(self.path, body)] += 1
        time.sleep(Handler.delay)
        if self.headers.get("Authorization") != "Bearer t" or self.headers.get("Content-Type") != "application/json":
            status, out = 401, b'{"error": "unauthorized"}'
        elif self.path.startswith("/bad/"):
            status, out = 409, b'{"error": "verdict_already_given"}'
        else:
            status, out = 200, b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def port() -> Iterator[int]:
    Handler.seen.clear()
    Handler.delay = 0.0
    with serving(Handler) as bound:
        yield bound


def spec(requests: list[list[str]], headers: dict[str, str], seconds: float | None = 30) -> dict[str, object]:
    return {"kind": "post", "requests": requests, "headers": headers, "concurrency": 8, "max_seconds": seconds}


@pytest.mark.parametrize("count", [1, 7, 8, 9, 500])
def test_each_request_is_sent_once_and_answered(port: int, count: int) -> None:
    requests = [[f"/ok/{n}", f'{{"verdict": "valid", "n": {n}}}'] for n in range(count)]
    result = load(port, spec(requests, {"Authorization": "Bearer t"}))
    assert result["generator"] == "wrk"
    assert only_ok(result, "ok") == result["done"] == result["sent"] == count
    assert Handler.seen == Counter((p, b) for p, b in requests)  # each path with its body, exactly once
    assert result["p50_ms"] <= result["p99_ms"]


def test_failures_are_counted_with_their_status_and_body(port: int) -> None:
    requests = [[f"/ok/{n}", "{}"] for n in range(20)] + [["/bad/1", "{}"], ["/bad/2", "{}"]]
    result = load(port, spec(requests, {"Authorization": "Bearer t"}))
    assert result["statuses"] == {"200": 20, "409": 2}
    assert any(e.startswith("409 ") and "verdict_already_given" in e for e in result["errors"])
    with pytest.raises(RuntimeError, match="unexpected answers"):
        only_ok(result, "mixed")
    assert set(load(port, spec([["/ok/1", "{}"]], {}))["statuses"]) == {"401"}


def test_no_new_request_after_the_time_bound_and_every_sent_one_answered(port: int) -> None:
    Handler.delay = 0.05  # 8 connections, 50 ms each: about 160 answers a second
    requests = [[f"/ok/{n}", "{}"] for n in range(5000)]
    result = load(port, spec(requests, {"Authorization": "Bearer t"}, seconds=1))
    assert 0 < result["sent"] < 5000
    assert only_ok(result, "bounded") == result["done"] == result["sent"]
    assert sum(Handler.seen.values()) == result["sent"]
