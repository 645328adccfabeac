"""bench/_common.py's wrk phase: the paths cycle, the headers are sent, every answer's status is counted (a path
that fails is never reported as a success). Skipped where wrk is not installed (`apt-get install wrk`)."""

from __future__ import annotations

import shutil
import sys
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
    """200 for /ok/… with the bearer token, 401 without it, 404 elsewhere; keep-alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[set[str]] = set()

    def do_GET(self) -> None:
        Handler.seen.add(self.path)
        if not self.path.startswith("/ok/"):
            status, body = 404, b'{"error": "not_found"}'
        elif self.headers.get("Authorization") != "Bearer t":
            status, body = 401, b'{"error": "unauthorized"}'
        else:
            status, body = 200, b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def port() -> Iterator[int]:
    with serving(Handler) as bound:
        yield bound


def spec(paths: list[str], headers: dict[str, str]) -> dict[str, object]:
    return {"kind": "get", "paths": paths, "headers": headers, "concurrency": 2, "max_seconds": 1, "warmup": 0}


def test_every_answer_is_counted_and_the_paths_cycle(port: int) -> None:
    Handler.seen.clear()
    result = load(port, spec(["/ok/1", "/ok/2", "/ok/3"], {"Authorization": "Bearer t"}))
    assert result["generator"] == "wrk"
    assert only_ok(result, "ok") == result["done"] > 0
    assert result["p50_ms"] <= result["p99_ms"]
    assert {"/ok/1", "/ok/2", "/ok/3"} <= Handler.seen


def test_failures_are_reported_with_their_status_and_body(port: int) -> None:
    result = load(port, spec(["/ok/1", "/missing"], {"Authorization": "Bearer t"}))
    assert set(result["statuses"]) == {"200", "404"}
    assert any(e.startswith("404 ") and "not_found" in e for e in result["errors"])
    with pytest.raises(RuntimeError, match="unexpected answers"):
        only_ok(result, "mixed")
    unauthorized = load(port, spec(["/ok/1"], {}))
    assert set(unauthorized["statuses"]) == {"401"}
