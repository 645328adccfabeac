"""mini-program openids linked by unionid

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _citizen_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["citizens.id"], name=f"fk_{table}_{column}_citizens")


def upgrade() -> None:
    op.add_column("citizens", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_table(
        "citizen_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(8), nullable=False),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("unionid", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        _citizen_fk("citizen_identities", "citizen_id"),
        sa.PrimaryKeyConstraint("id", name="pk_citizen_identities"),
        sa.UniqueConstraint("app", "openid", name="uq_citizen_identities_app"),
    )
    op.create_index("ix_citizen_identities_citizen_id", "citizen_identities", ["citizen_id"])
    op.create_index("ix_citizen_identities_unionid", "citizen_identities", ["unionid"])
    op.create_table(
        "identity_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_citizen_id", sa.Integer(), nullable=False),
        sa.Column("into_citizen_id", sa.Integer(), nullable=False),
        sa.Column("app", sa.String(8), nullable=False),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("unionid", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        _citizen_fk("identity_links", "from_citizen_id"),
        _citizen_fk("identity_links", "into_citizen_id"),
        sa.PrimaryKeyConstraint("id", name="pk_identity_links"),
        sa.UniqueConstraint("from_citizen_id", "into_citizen_id", name="uq_identity_links_from_citizen_id"),
    )
    op.create_table(
        "citizen_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("from_citizen_id", sa.Integer(), nullable=False),
        sa.Column("into_citizen_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("cases_moved", sa.Integer(), nullable=False),
        sa.Column("entries_moved", sa.Integer(), nullable=False),
        sa.Column("points_moved", sa.Integer(), nullable=False),
        _citizen_fk("citizen_merges", "from_citizen_id"),
        _citizen_fk("citizen_merges", "into_citizen_id"),
        sa.PrimaryKeyConstraint("id", name="pk_citizen_merges"),
        sa.UniqueConstraint("from_citizen_id", name="uq_citizen_merges_from_citizen_id"),
    )
    op.create_index("ix_citizen_merges_into_citizen_id", "citizen_merges", ["into_citizen_id"])


def downgrade() -> None:
    with op.batch_alter_table("citizens") as batch:
        batch.drop_column("merged_into_id")
    op.drop_index("ix_citizen_merges_into_citizen_id", table_name="citizen_merges")
    op.drop_table("citizen_merges")
    op.drop_table("identity_links")
    op.drop_index("ix_citizen_identities_unionid", table_name="citizen_identities")
    op.drop_index("ix_citizen_identities_citizen_id", table_name="citizen_identities")
    op.drop_table("citizen_identities")
