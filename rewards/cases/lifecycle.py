"""The case lifecycle as a pure state machine."""

from __future__ import annotations

from rewards.errors import Conflict

REPORTED = "reported"
FILED = "filed"
REFUSED = "refused"
DISPATCHED = "dispatched"
PROCESSING = "processing"
RESOLVED = "resolved"
CLOSED = "closed"
VOIDED = "voided"

STATUSES = (REPORTED, FILED, REFUSED, DISPATCHED, PROCESSING, RESOLVED, CLOSED, VOIDED)
FILED_STATES = frozenset({FILED, DISPATCHED, PROCESSING, RESOLVED, CLOSED})
OPEN_STATES = frozenset({REPORTED, FILED, DISPATCHED, PROCESSING, RESOLVED})
TERMINAL_STATES = frozenset({REFUSED, CLOSED, VOIDED})

TRANSITIONS: dict[str, frozenset[str]] = {
    REPORTED: frozenset({FILED, REFUSED}),
    FILED: frozenset({DISPATCHED, VOIDED}),
    DISPATCHED: frozenset({PROCESSING, RESOLVED, VOIDED}),
    PROCESSING: frozenset({RESOLVED, VOIDED}),
    RESOLVED: frozenset({CLOSED, PROCESSING, VOIDED}),  # resolved -> processing: sent back
    CLOSED: frozenset({VOIDED}),
    REFUSED: frozenset(),
    VOIDED: frozenset(),
}

STATUS_LABELS = {
    REPORTED: "已上报",
    FILED: "已立案",
    REFUSED: "不予立案",
    DISPATCHED: "已派遣",
    PROCESSING: "处置中",
    RESOLVED: "已处置",
    CLOSED: "已结案",
    VOIDED: "已作废",
}


def can_transition(current: str, target: str) -> bool:
    """Return True when the lifecycle allows current -> target."""
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str) -> None:
    """Raise Conflict (HTTP 409) with a reason when current -> target is illegal."""
    if target not in TRANSITIONS:
        raise Conflict(f"unknown case status {target!r}", code="unknown_status")
    if not can_transition(current, target):
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (terminal)"
        raise Conflict(
            f"illegal transition {current} -> {target}; allowed from {current}: {allowed}",
            code="illegal_transition",
        )


def is_open(status: str) -> bool:
    """Return True while a case is still being handled (Open311 'open')."""
    return status in OPEN_STATES
