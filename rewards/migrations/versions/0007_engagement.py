"""satisfaction ratings and milestone notices

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("district", sa.String(64), nullable=True),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("case_status", sa.String(16), nullable=False),
        sa.Column("rated_at", sa.DateTime(), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.Column("handled_by", sa.String(128), nullable=True),
        sa.Column("handled_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_pk"], ["cases.id"], name="fk_case_ratings_case_pk_cases"),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_case_ratings_citizen_id_citizens"),
        sa.PrimaryKeyConstraint("id", name="pk_case_ratings"),
        sa.UniqueConstraint("case_pk", name="uq_case_ratings_case_pk"),
    )
    op.create_index("ix_case_ratings_citizen_id", "case_ratings", ["citizen_id"])
    op.create_index("ix_case_ratings_rated_at", "case_ratings", ["rated_at"])
    op.create_index("ix_case_ratings_level_handled_at", "case_ratings", ["level", "handled_at"])
    # milestone notices (rewards/engagement/milestones.py): one mention of a milestone per citizen
    op.create_table(
        "milestone_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("milestone", sa.String(length=32), nullable=False),
        sa.Column("mentioned_at", sa.DateTime(), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name="fk_milestone_notices_citizen_id_citizens"),
        sa.PrimaryKeyConstraint("id", name="pk_milestone_notices"),
        sa.UniqueConstraint("citizen_id", "milestone", name="uq_milestone_notices_citizen_milestone"),
    )


def downgrade() -> None:
    op.drop_table("milestone_notices")  # milestone notices (rewards/engagement/milestones.py)
    op.drop_index("ix_case_ratings_level_handled_at", table_name="case_ratings")
    op.drop_index("ix_case_ratings_rated_at", table_name="case_ratings")
    op.drop_index("ix_case_ratings_citizen_id", table_name="case_ratings")
    op.drop_table("case_ratings")
