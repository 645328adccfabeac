"""Hand-written fakes passed through bootstrap()."""

from __future__ import annotations

from collections.abc import Sequence

from rewards.scoring.model import EntryFacts


class RecordingSink:
    """Records every entry handed to the boards after commit (and eligibility changes)."""

    def __init__(self) -> None:
        self.entries: list[EntryFacts] = []
        self.eligibility: list[tuple[int, bool]] = []
        self.districts: list[tuple[int, str | None]] = []

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Record the entries."""
        self.entries.extend(entries)

    def set_eligible(self, citizen_id: int, eligible: bool) -> None:
        """Record an eligibility change."""
        self.eligibility.append((citizen_id, eligible))

    def set_district(self, citizen_id: int, district: str | None) -> None:
        """Record a district change."""
        self.districts.append((citizen_id, district))
