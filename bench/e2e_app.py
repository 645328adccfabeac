"""ASGI wrapper of bench/e2e.py: the real app plus one bare endpoint that does a single ZREVRANK.

    python bench/e2e_app.py PORT WORKERS      # what bench/_common.py's Service runs

`GET /bench/pid` answers the worker's pid (the bench waits for every worker). `GET /bench/zrevrank/{member}` is
the baseline of the `standing` endpoint: same process, same middleware
(session cookies), same thread pool (a plain `def` route like `standing`), same Redis client, and one Redis round
trip on the same board `standing` ranks on first (this week's board of the current generation). The key is
fixed when the worker starts: the benchmark does not rebuild while the server runs. No product code changes.

The server is uvicorn as `rewards serve` runs it (rewards.cli.server.uvicorn_options: its HTTP protocol, with
TCP_NODELAY on every connection, and its limits), so the benchmark measures the production configuration, not
uvicorn's defaults (whose `--workers N` leaves Nagle on: ~40 ms a request, uvicorn issue #3149).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response

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

    @app.get("/bench/pid", include_in_schema=False)
    async def pid() -> Response:
        """This worker's process id: the bench waits until every worker has answered before it measures."""
        return Response(str(os.getpid()), media_type="text/plain")

    @app.get("/bench/zrevrank/{member}", include_in_schema=False)
    def zrevrank(member: str) -> dict[str, int | None]:
        """One ZREVRANK on this week's board."""
        rank = client.zrevrank(board, member)
        return {"rank": None if rank is None else int(rank)}

    return app


def serve(port: int, workers: int) -> None:
    """Run this app under uvicorn on 127.0.0.1 with the options of `rewards serve` (settings from REWARDS_*)."""
    # imported here, in the supervisor only: the workers import this module for app_factory, not the command line
    from rewards.cli import WORKER_HEALTHCHECK_SECONDS
    from rewards.cli.server import raise_file_limit, uvicorn_options
    from rewards.config import load_settings

    options = uvicorn_options(load_settings(), raise_file_limit())
    options["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS
    uvicorn.run(
        "e2e_app:app_factory",
        factory=True,
        app_dir=str(Path(__file__).resolve().parent),
        host="127.0.0.1",
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        **options,
    )


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
