"""What a process does once its container is built (before serving)."""

from __future__ import annotations

from rewards.bootstrap import Container


def on_start(container: Container) -> None:
    """Prepare derived state; e.g. rebuild the boards when Redis is empty (added by the leaderboard)."""
