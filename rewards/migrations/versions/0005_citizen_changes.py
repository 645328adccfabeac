"""citizen changes the boards must learn (eligibility, district), replayed by the projector

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_citizen_changes_citizen_id_citizens"),
        sa.PrimaryKeyConstraint("id", name="pk_citizen_changes"),
    )
    op.create_index("ix_citizen_changes_citizen_id", "citizen_changes", ["citizen_id"])


def downgrade() -> None:
    op.drop_index("ix_citizen_changes_citizen_id", table_name="citizen_changes")
    op.drop_table("citizen_changes")
