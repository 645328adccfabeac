"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<raw body>" with the shared secret (docs/intake.md).

The sender puts the current Unix time (whole seconds) in X-Timestamp and
"sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + raw body bytes)) in X-Signature. A request is accepted
only when the signature matches (compared in constant time) and the timestamp is within the replay window of
the receiver's clock; replays inside the window are harmless because every event id is applied once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

from rewards.errors import Unauthorized

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Timestamp"
SCHEME = "sha256="
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the X-Signature value for a timestamp and raw body: 'sha256=<64 hex digits>'."""
    mac = hmac.new(secret.encode(), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def check_headers(timestamp: str | None, signature_header: str | None) -> tuple[str, str]:
    """Return (timestamp, hex signature) when both headers are present and well-formed; raise Unauthorized (401).

    Needs no body: the route calls it before reading one, so an unsigned request is refused unread.
    """
    if not signature_header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header", code="missing_signature")
    if not timestamp:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} header", code="missing_timestamp")
    timestamp = timestamp.strip()
    if not _TIMESTAMP_RE.match(timestamp):
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be Unix time in whole seconds", code="bad_timestamp")
    given = signature_header.strip().lower().removeprefix(SCHEME)
    if not _HEX_RE.match(given):
        raise Unauthorized(f"{SIGNATURE_HEADER} must be 'sha256=' and 64 hex digits", code="bad_signature")
    return timestamp, given


def verify(
    *,
    secret: str,
    window_seconds: int,
    now: datetime,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
) -> None:
    """Raise Unauthorized (401) with the reason unless the request is signed and fresh; return None if it is."""
    timestamp, given = check_headers(timestamp, signature_header)
    expected = signature(secret, timestamp, body).removeprefix(SCHEME)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("signature does not match the body and timestamp", code="bad_signature")
    # checked after the signature so a forger learns nothing, and a genuine but old request is told why
    skew = abs(now.timestamp() - int(timestamp))
    if skew > window_seconds:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is {int(skew)} s away from the server's clock (allowed: {window_seconds} s)",
            code="stale_timestamp",
        )
