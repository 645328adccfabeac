"""Schema migrations (Alembic) run programmatically: the same migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from rewards.db import Base

ROOT = Path(__file__).resolve().parent.parent


def _import_models() -> MetaData:
    import intake_adapter.models  # noqa: F401  (registers the inbox table)
    import rewards.cases.models
    import rewards.leaderboard.snapshot
    import rewards.publish.models
    import rewards.scoring.ledger  # noqa: F401

    return Base.metadata


target_metadata = _import_models()


def alembic_config() -> Config:
    """Return the Alembic config of the project, wherever it is run from."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """Return the newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
