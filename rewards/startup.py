"""What a process does once its container is built (before serving)."""

from __future__ import annotations

from rewards.bootstrap import Container
from rewards.logs import get_logger

log = get_logger("startup")


def on_start(container: Container) -> None:
    """Prepare derived state: rebuild the boards when Redis holds none (empty, flushed, or embedded Redis)."""
    from rewards.leaderboard.boards import Boards
    from rewards.leaderboard.rebuild import rebuild_if_empty

    if not isinstance(container.boards, Boards):
        return  # a test sink stands in for the boards
    try:
        report = rebuild_if_empty(container)
    except Exception as exc:  # derived state: serve anyway, `rewards rebuild` repairs it
        log.warning("could not rebuild the leaderboards at start-up: %r", exc)
        return
    if report is not None:
        log.info("leaderboards rebuilt at start-up: %s citizens, %s entries", report.citizens, report.entries)
