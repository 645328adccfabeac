"""stats: case deadlines from the case system and the cached weekly city-management record

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COUNTS = (
    "received",
    "filed",
    "refused",
    "dispatched",
    "closed",
    "filed_and_closed",
    "closed_with_deadline",
    "closed_on_time",
)
PEOPLE = ("active_reporters", "first_time_reporters", "rated", "satisfied", "points")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("deadline_at", sa.DateTime(), nullable=True))
    op.create_table(
        "stats_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("scope_kind", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("median_filing_seconds", sa.Float(), nullable=True),
        sa.Column("median_closing_seconds", sa.Float(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in PEOPLE),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stats_figures"),
        sa.UniqueConstraint("period", "scope_kind", "scope", name="uq_stats_figures_period_scope"),
    )
    op.create_index("ix_case_history_status_occurred_at", "case_history", ["status", "occurred_at"])
    op.create_index("ix_ledger_entries_created_at", "ledger_entries", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_created_at", table_name="ledger_entries")
    op.drop_index("ix_case_history_status_occurred_at", table_name="case_history")
    op.drop_table("stats_figures")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("deadline_at")
