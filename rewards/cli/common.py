"""What every `rewards` command shares: failing with a message, and opening the services from the environment."""

from __future__ import annotations

from typing import Any

import typer

from rewards import migrate
from rewards.bootstrap import Container, bootstrap
from rewards.config import load_settings
from rewards.db import make_engine
from rewards.errors import ConfigError


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def open_container(migrate_embedded: bool = True, overrides: dict[str, Any] | None = None) -> Container:
    """Build the services from the environment; the embedded SQLite default is migrated automatically."""
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
