"""ASGI wrapper of bench/e2e.py: the real app plus one bare endpoint that does a single ZREVRANK.

    python -m uvicorn e2e_app:app_factory --factory --app-dir bench ...

`GET /bench/zrevrank/{member}` is the baseline of the `standing` endpoint: same process, same middleware
(session cookies), same thread pool (a plain `def` route like `standing`), same Redis client, and one Redis round
trip on the same board `standing` ranks on first (this week's board of the current generation). The key is
fixed when the worker starts: the benchmark does not rebuild while the server runs. No product code changes.
"""

from __future__ import annotations

from fastapi import FastAPI

from rewards.asgi import app_factory as product_app
from rewards.bootstrap import Container
from rewards.leaderboard import keys


def app_factory() -> FastAPI:
    """Build the product app for this worker and add the bare ZREVRANK endpoint."""
    app = product_app()
    container: Container = app.state.container
    client = container.redis
    prefix = container.settings.leaderboard_key_prefix
    week = str(container.leaderboard.current_week())
    board = keys.board_key(prefix, container.boards.generation(), keys.weekly(week))

    @app.get("/bench/zrevrank/{member}", include_in_schema=False)
    def zrevrank(member: str) -> dict[str, int | None]:
        """One ZREVRANK on this week's board."""
        rank = client.zrevrank(board, member)
        return {"rank": None if rank is None else int(rank)}

    return app
