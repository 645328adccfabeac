"""intake inbox (intake adapter)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("occurred_at", sa.DateTime()),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("applied_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_events"),
        sa.UniqueConstraint("event_id", name="uq_inbox_events_event_id"),
    )
    op.create_index("ix_inbox_events_case_id", "inbox_events", ["case_id"])
    op.create_index("ix_inbox_events_status", "inbox_events", ["status"])


def downgrade() -> None:
    op.drop_index("ix_inbox_events_status", table_name="inbox_events")
    op.drop_index("ix_inbox_events_case_id", table_name="inbox_events")
    op.drop_table("inbox_events")
