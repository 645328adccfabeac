"""The hand-written migrations and the ORM models describe the same schema, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from rewards import migrate
from rewards.db import Base


def _relevant(diff: object) -> bool:
    # server-side defaults and comment-only differences are not schema drift we care about
    kind = diff[0] if isinstance(diff, tuple) else None
    return kind not in ("modify_default", "modify_comment")


def test_migrations_match_models(db_engine: Engine) -> None:
    with db_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(ctx, Base.metadata) if _relevant(d)]
    assert diffs == []


def test_database_is_at_head(db_engine: Engine) -> None:
    assert migrate.current_revision(db_engine) == migrate.head_revision()


def test_migrations_ship_inside_the_package() -> None:
    """alembic.ini and the revisions sit in the rewards package, so an installed wheel migrates too."""
    package = Path(migrate.__file__).resolve().parent
    cfg = migrate.alembic_config()
    assert Path(str(cfg.config_file_name)) == package / "alembic.ini"
    assert Path(str(cfg.get_main_option("script_location"))) == package / "migrations"
    assert sorted(p.name for p in (package / "migrations" / "versions").glob("0*.py"))
