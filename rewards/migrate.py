"""Schema migrations (Alembic) run programmatically: the same migrations on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from rewards.db import Base

# Shipped inside the package (package data), so an installed wheel migrates as a source checkout does.
PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def _import_models() -> MetaData:
    """Import every module that declares tables (each registers them on Base.metadata), return that metadata."""
    # Imported here, not at the top: only to register their tables; the list is every table the migrations create
    import intake_adapter.models  # noqa: F401  (inbox_events)
    import rewards.cases.identity  # citizen_identities, identity_links, citizen_merges
    import rewards.cases.models  # citizens, cases, case_history, audit_log
    import rewards.engagement.milestones  # milestone_notices
    import rewards.engagement.ratings  # case_ratings
    import rewards.leaderboard.weeks  # weekly_snapshots, weekly_snapshot_rows
    import rewards.publish.models  # publications, winner_notices
    import rewards.scoring.ledger  # ledger_entries
    import rewards.stats.models  # noqa: F401  (stats_figures; the record's time-range indexes)

    return Base.metadata


target_metadata = _import_models()


def alembic_config() -> Config:
    """Return the Alembic config of the project, wherever it is run from and however it is installed."""
    cfg = Config(str(ALEMBIC_INI))
    # Explicit, not only the ini's %(here)s: the migrations sit beside this module. A '%' in the install path would
    # read as interpolation to configparser, hence the escape.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
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
