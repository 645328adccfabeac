"""What the public record says about one period and one scope (pure): counts from SQL, rates derived from them.

Every figure is defined by the steps of the case history that happened (occurred_at) inside the period, in the
program's time zone, so the record of a week that has ended no longer changes:

- received: reports made in the period; active reporters: citizens who made one; first-time reporters: citizens
  whose first report ever was made in the period (counted in the scope of that first report);
- filed / refused: the command center's verdicts given in the period (valid rate = filed / (filed + refused));
- dispatched / closed: cases dispatched / closed in the period; same-period closing rate: of the cases filed in
  the period, the share also closed in it;
- median hours from report to filing (cases filed in the period) and to closing (cases closed in the period);
- on-time rate: of the cases closed in the period that carry a deadline from the case system, the share closed by it;
- satisfaction rate: of the ratings given in the period, the share "满意" or "基本满意";
- points: the ledger's points awarded in the period (reversals included).

A case belongs to its district and to the department that handles it (the one it was last assigned to).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

ScopeKind = Literal["city", "district", "department"]
SCOPE_KINDS: tuple[ScopeKind, ...] = ("city", "district", "department")
CITY = ""  # the scope name of the city-wide figures


@dataclass(frozen=True)
class Counts:
    """The raw aggregates of one period and one scope, as SQL computes them (None: no case to take a median of)."""

    received: int = 0
    filed: int = 0
    refused: int = 0
    dispatched: int = 0
    closed: int = 0
    filed_and_closed: int = 0  # filed in the period and closed in it too
    closed_with_deadline: int = 0
    closed_on_time: int = 0
    median_filing_seconds: float | None = None
    median_closing_seconds: float | None = None
    active_reporters: int = 0
    first_time_reporters: int = 0
    rated: int = 0
    satisfied: int = 0
    points: int = 0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names, in order (the columns of the cache table)."""
        return tuple(f.name for f in fields(cls))


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to divide (shown as "—", never as 0 % or 100 %)."""
    return part / whole if whole > 0 else None


def hours(seconds: float | None) -> float | None:
    """Seconds as hours, or None."""
    return None if seconds is None else seconds / 3600


@dataclass(frozen=True)
class Figures:
    """The published figures of one scope in one period: the counts and the rates derived from them."""

    scope_kind: ScopeKind
    scope: str  # "" for the city, else the district's or department's name
    counts: Counts

    @property
    def valid_rate(self) -> float | None:
        """Filed / (filed + refused): the share of verdicts that found the report valid."""
        return ratio(self.counts.filed, self.counts.filed + self.counts.refused)

    @property
    def closing_rate(self) -> float | None:
        """Of the cases filed in the period, the share also closed in it."""
        return ratio(self.counts.filed_and_closed, self.counts.filed)

    @property
    def on_time_rate(self) -> float | None:
        """Of the cases closed in the period with a deadline, the share closed by it."""
        return ratio(self.counts.closed_on_time, self.counts.closed_with_deadline)

    @property
    def satisfaction_rate(self) -> float | None:
        """Of the ratings given in the period, the share satisfied or basically satisfied."""
        return ratio(self.counts.satisfied, self.counts.rated)

    @property
    def median_filing_hours(self) -> float | None:
        """Median hours from report to filing."""
        return hours(self.counts.median_filing_seconds)

    @property
    def median_closing_hours(self) -> float | None:
        """Median hours from report to closing."""
        return hours(self.counts.median_closing_seconds)


def percent(value: float | None) -> str:
    """A rate as the page shows it: 87.5%, or — when there is nothing to rate."""
    return "—" if value is None else f"{value * 100:.1f}%"


def hours_text(value: float | None) -> str:
    """Hours as the page shows them: 5.2 小时, or —."""
    return "—" if value is None else f"{value:.1f} 小时"
