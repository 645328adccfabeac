"""What scoring and the case flows need from the leaderboards (pure Protocol): the after-commit sink.

Redis boards implement it (rewards.leaderboard.boards.Boards); tests pass a recording fake through bootstrap().
Every call must be safe to repeat: entries are applied once by entry id, restatements are idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rewards.scoring.model import EntryFacts


class BoardSink(Protocol):
    """Where committed ledger entries and citizen changes go after commit."""

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Apply each entry exactly once, keyed by its entry_id."""
        ...

    def set_eligible(self, citizen_id: int, eligible: bool) -> None:
        """Move a citizen onto or off the eligible-only boards."""
        ...

    def set_district(self, citizen_id: int, district: str | None) -> None:
        """Move a citizen's weekly totals to another district's boards."""
        ...
