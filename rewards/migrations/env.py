"""Alembic environment: the URL comes from the caller (rewards.migrate) or from Settings."""

from __future__ import annotations

from alembic import context

from rewards.migrate import target_metadata

config = context.config


def run_migrations_online() -> None:
    """Run migrations on the connection or URL the caller put in the config."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from rewards.config import load_settings
    from rewards.db import make_engine

    engine = make_engine(load_settings().database_url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
