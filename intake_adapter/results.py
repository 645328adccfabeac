"""What intake did with each event: the webhook's per-event results and the replay summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewards.errors import DomainError


@dataclass
class EventResult:
    """What happened to one event: applied, duplicate (already applied), failed (kept) or rejected (not kept)."""

    event_id: str | None
    result: str
    status: int = 200  # the HTTP status this event alone would get
    type: str | None = None
    case_id: str | None = None
    effect: str | None = None  # created | moved | recorded (too late to move the case) | unchanged
    case_status: str | None = None
    error: str | None = None
    detail: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the JSON form, without empty fields (every field is a plain value: no deep copy as asdict makes)."""
        return {k: v for k, v in vars(self).items() if v is not None}

    @property
    def ok(self) -> bool:
        """True for applied and duplicate."""
        return self.result in ("applied", "duplicate")


@dataclass
class BatchOutcome:
    """The results of one webhook request, in request order, plus earlier failures it unblocked."""

    results: list[EventResult]
    also_applied: list[EventResult] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        """200 when every event was applied or a duplicate; else the failures' common 4xx status, or 422."""
        failing = {r.status for r in self.results if not r.ok}
        if not failing:
            return 200
        return failing.pop() if len(failing) == 1 else 422

    def body(self) -> dict[str, object]:
        """Return the response body: counts and every event's result."""
        counts = {k: sum(r.result == k for r in self.results) for k in ("applied", "duplicate", "failed", "rejected")}
        return {
            "received": len(self.results),
            **counts,
            "results": [r.as_dict() for r in self.results],
            "also_applied": [r.as_dict() for r in self.also_applied],
        }


@dataclass(frozen=True)
class InboxView:
    """An inbox row as the replay summary shows it."""

    event_id: str
    type: str
    case_id: str | None
    status: str
    attempts: int
    error: str | None


@dataclass
class ReplaySummary:
    """What `rewards intake replay` did."""

    attempted: int
    applied: list[EventResult]
    still_failing: list[InboxView]
    passes: int


def failure(event_id: str | None, exc: DomainError, result: str = "failed") -> EventResult:
    """Return the result of an event that could not be applied."""
    return EventResult(event_id, result, status=exc.status, error=exc.code, detail=exc.message)
