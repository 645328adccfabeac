"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", constant-time compare, replay window."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_adapter.auth import signature, verify
from rewards.errors import Unauthorized

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
SECRET = "s3cret"
TS = str(int(NOW.timestamp()))


def check(body: bytes, *, ts: str | None = TS, sig: str | None = None, now: datetime = NOW, window: int = 300) -> None:
    if sig is None:
        sig = signature(SECRET, ts or "", body)
    verify(secret=SECRET, window_seconds=window, now=now, timestamp=ts, signature_header=sig, body=body)


def test_the_documented_scheme_by_hand() -> None:
    body = b'{"events":[]}'
    mac = hmac.new(b"s3cret", f"{TS}.".encode() + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, TS, body) == "sha256=" + mac
    check(body, sig="sha256=" + mac)
    check(body, sig=mac.upper())  # the prefix is optional and hex is case-insensitive


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"sig": ""}, "missing_signature"),
        ({"ts": None, "sig": "sha256=" + "0" * 64}, "missing_timestamp"),
        ({"ts": "2026-11-25T02:00:00Z", "sig": "sha256=" + "0" * 64}, "bad_timestamp"),
        ({"sig": "sha256=xyz"}, "bad_signature"),
        ({"sig": "sha256=" + "0" * 64}, "bad_signature"),
        ({"now": NOW + timedelta(seconds=301)}, "stale_timestamp"),
        ({"now": NOW - timedelta(seconds=301)}, "stale_timestamp"),
    ],
)
def test_rejections_name_their_reason(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(Unauthorized) as info:
        check(b"{}", **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code
    assert info.value.status == 401


def test_the_window_edges_are_inclusive() -> None:
    check(b"{}", now=NOW + timedelta(seconds=300))
    check(b"{}", now=NOW - timedelta(seconds=300))


def test_a_signature_with_another_secret_fails() -> None:
    with pytest.raises(Unauthorized, match="does not match"):
        check(b"{}", sig=signature("other", TS, b"{}"))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(min_size=1, max_size=200), st.integers(0, 10**9))
def test_any_change_to_body_or_timestamp_breaks_the_signature(body: bytes, other: bytes, ts: int) -> None:
    sig = signature(SECRET, str(ts), body)
    now = datetime.fromtimestamp(ts, UTC)
    verify(secret=SECRET, window_seconds=1, now=now, timestamp=str(ts), signature_header=sig, body=body)
    if other != body:
        with pytest.raises(Unauthorized):
            verify(secret=SECRET, window_seconds=1, now=now, timestamp=str(ts), signature_header=sig, body=other)
    with pytest.raises(Unauthorized):
        verify(secret=SECRET, window_seconds=10, now=now, timestamp=str(ts + 1), signature_header=sig, body=body)
