"""weekly snapshots and publications

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SNAPSHOT_TABLES = ("weekly_snapshots", "weekly_snapshot_rows")

# PostgreSQL: row-level BEFORE UPDATE OR DELETE raises (TRUNCATE, an explicit maintenance act, is not a row event).
PG_FUNCTION = """
CREATE OR REPLACE FUNCTION rewards_snapshot_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'weekly snapshots are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""
# SQLite: BEFORE UPDATE raises. DELETE stays possible there: the test harness empties tables with DELETE.
SQLITE_TRIGGER = """
CREATE TRIGGER trg_{table}_immutable BEFORE UPDATE ON {table}
BEGIN
    SELECT RAISE(ABORT, 'weekly snapshots are immutable: UPDATE on {table} refused');
END
"""


def upgrade() -> None:
    op.create_table(
        "weekly_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("winners", sa.Integer(), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("board_status", sa.String(16), nullable=False),
        sa.Column("board_diff", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_weekly_snapshots"),
        sa.UniqueConstraint("week", name="uq_weekly_snapshots_week"),
    )
    op.create_table(
        "weekly_snapshot_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "snapshot_id",
            sa.Integer(),
            sa.ForeignKey("weekly_snapshots.id", name="fk_weekly_snapshot_rows_snapshot_id_weekly_snapshots"),
            nullable=False,
        ),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column(
            "citizen_id",
            sa.Integer(),
            sa.ForeignKey("citizens.id", name="fk_weekly_snapshot_rows_citizen_id_citizens"),
            nullable=False,
        ),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reached_at", sa.DateTime(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("prize", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_weekly_snapshot_rows"),
        sa.UniqueConstraint("snapshot_id", "rank", name="uq_weekly_snapshot_rows_rank"),
        sa.UniqueConstraint("snapshot_id", "citizen_id", name="uq_weekly_snapshot_rows_citizen"),
    )
    op.create_index("ix_weekly_snapshot_rows_citizen_id", "weekly_snapshot_rows", ["citizen_id"])
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column(
            "snapshot_id",
            sa.Integer(),
            sa.ForeignKey("weekly_snapshots.id", name="fk_publications_snapshot_id_weekly_snapshots"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("content_image_url", sa.Text(), nullable=True),
        sa.Column("thumb_media_id", sa.String(128), nullable=True),
        sa.Column("title", sa.String(64), nullable=True),
        sa.Column("digest", sa.Text(), nullable=True),
        sa.Column("author", sa.String(32), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("content_source_url", sa.Text(), nullable=True),
        sa.Column("draft_requested_at", sa.DateTime(), nullable=True),
        sa.Column("draft_media_id", sa.String(128), nullable=True),
        sa.Column("submit_requested_at", sa.DateTime(), nullable=True),
        sa.Column("publish_id", sa.String(128), nullable=True),
        sa.Column("article_id", sa.String(128), nullable=True),
        sa.Column("article_url", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_publications"),
        sa.UniqueConstraint("week", name="uq_publications_week"),
        sa.CheckConstraint(
            "state IN ('pending','drafted','submitted','published','failed')", name="ck_publications_state"
        ),
    )
    op.create_table(
        "winner_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column(
            "citizen_id",
            sa.Integer(),
            sa.ForeignKey("citizens.id", name="fk_winner_notices_citizen_id_citizens"),
            nullable=False,
        ),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("msgid", sa.String(64), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_winner_notices"),
        sa.UniqueConstraint("week", "citizen_id", name="uq_winner_notices_week_citizen"),
        sa.UniqueConstraint("client_msg_id", name="uq_winner_notices_client_msg_id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in SNAPSHOT_TABLES:
            op.execute(
                f"CREATE TRIGGER trg_{table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION rewards_snapshot_immutable()"
            )
    else:
        for table in SNAPSHOT_TABLES:
            op.execute(SQLITE_TRIGGER.format(table=table))


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for table in SNAPSHOT_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_immutable" + (f" ON {table}" if is_pg else ""))
    if is_pg:
        op.execute("DROP FUNCTION IF EXISTS rewards_snapshot_immutable()")
    for table in ("winner_notices", "publications", "weekly_snapshot_rows", "weekly_snapshots"):
        op.drop_table(table)
