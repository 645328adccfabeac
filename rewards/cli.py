"""The `rewards` command: serve, db upgrade, and each domain's commands registered from its own module."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewards.errors import ConfigError, DomainError

if TYPE_CHECKING:
    from rewards.bootstrap import Container

app = typer.Typer(help="rewards: incentive engine of the 随手拍 reporting program", no_args_is_help=True)
db_app = typer.Typer(help="database schema", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def open_container(migrate_embedded: bool = True, overrides: dict[str, Any] | None = None) -> Container:
    """Build the container from the environment; the embedded SQLite default is migrated automatically."""
    from rewards import migrate
    from rewards.bootstrap import bootstrap
    from rewards.config import load_settings
    from rewards.db import make_engine

    try:
        settings = load_settings(**(overrides or {}))
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    engine = make_engine(settings.database_url)
    if migrate_embedded and engine.dialect.name == "sqlite":
        migrate.upgrade(engine)
    elif migrate.current_revision(engine) != migrate.head_revision():
        raise fail("the database schema is not up to date: run `rewards db upgrade` first")
    return bootstrap(settings, engine=engine)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply schema migrations to REWARDS_DATABASE_URL."""
    from rewards import migrate
    from rewards.config import load_settings
    from rewards.db import make_engine

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
    workers: Annotated[int, typer.Option(help="worker processes (embedded Redis forces 1)")] = 1,
) -> None:
    """Run the web service (intake, command center, citizens)."""
    import uvicorn

    from rewards.config import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    if not settings.redis_url and workers != 1:
        typer.echo("embedded Redis is in-process: running one worker", err=True)
        workers = 1
    open_container()  # migrate the embedded database / check the schema before workers start
    uvicorn.run("rewards.asgi:app_factory", factory=True, host=host, port=port, workers=workers)


def _register_domain_commands() -> None:
    from importlib import import_module

    for module in ("rewards.leaderboard.cli", "rewards.publish.cli", "rewards.web.cli", "intake_adapter.cli"):
        try:
            mod = import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.register(app)


_register_domain_commands()


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
