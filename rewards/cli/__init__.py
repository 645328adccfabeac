"""The `rewards` command: serve, db upgrade, and each area's commands registered from its own module."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import uvicorn

from rewards import migrate
from rewards.cli import boards, citizens, demo, intake, server, weeks
from rewards.cli.common import fail, open_container
from rewards.config import load_settings
from rewards.db import make_engine
from rewards.errors import ConfigError, DomainError
from rewards.logs import server_log_config
from rewards.observability.multiproc import multiprocess_metrics

__all__ = ["app", "fail", "main", "open_container"]
WORKER_HEALTHCHECK_SECONDS = 30

app = typer.Typer(help="rewards: incentive engine of the 随手拍 reporting program", no_args_is_help=True)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations to REWARDS_DATABASE_URL."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    typer.echo(f"database at revision {migrate.current_revision(engine)}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to bind")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Run the web service (intake, command center, citizens); uvicorn's limits come from REWARDS_SERVER_* settings."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    open_container().close()  # migrate the embedded database / check the schema before workers start
    options = server.uvicorn_options(settings, server.raise_file_limit())
    options["log_config"] = server_log_config(settings.log_format)  # REWARDS_LOG_FORMAT, request ids on every line
    # a spawned worker imports the whole service (about 3 s of CPU) before it answers the supervisor's health pings:
    # at uvicorn's default 5 s a busy machine has every worker killed as hung, and restarted, for ever
    options.setdefault("timeout_worker_healthcheck", WORKER_HEALTHCHECK_SECONDS)
    with multiprocess_metrics(workers):  # several workers: /metrics adds up every worker's counters
        uvicorn.run("rewards.asgi:app_factory", factory=True, host=host, port=port, workers=workers, **options)


for area in (boards, weeks, demo, intake, citizens):
    area.register(app)


def main() -> None:
    """Entry point of the console script; domain errors become a message and exit code 2."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except DomainError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
