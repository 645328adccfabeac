"""objections amendments final lists and prize claims

Revision ID: 0006
Revises: 0005

The review of a published week (rewards.review): the sealed candidate pool and list versions (immutable, like the
weekly snapshots: UPDATE refused, and DELETE on PostgreSQL), objections, decisions, the final list and claims.
Publications and winner notices gain a `kind` (notice | final): the 定榜 is the week's second publication.
Weeks already published when this runs are recorded as final as they stand (checksum 'legacy', no claims).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SEALED_TABLES = ("review_pools", "review_versions")
# PostgreSQL: the function rewards_snapshot_immutable() of migration 0003 raises on any row event it guards.
SQLITE_TRIGGER = """
CREATE TRIGGER trg_{table}_immutable BEFORE UPDATE ON {table}
BEGIN
    SELECT RAISE(ABORT, 'sealed review rows are immutable: UPDATE on {table} refused');
END
"""


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{referred}.id"], name=f"fk_{table}_{column}_{referred}")


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("objection_id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("target_citizen_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        _fk("review_decisions", "target_citizen_id", "citizens"),
        sa.PrimaryKeyConstraint("id", name="pk_review_decisions"),
        sa.UniqueConstraint("objection_id", name="uq_review_decisions_objection_id"),
        sa.CheckConstraint("outcome IN ('rejected','upheld')", name="ck_review_decisions_outcome"),
    )
    op.create_index("ix_review_decisions_week", "review_decisions", ["week"])
    op.create_table(
        "review_pools",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("snapshot_checksum", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_pools"),
        sa.UniqueConstraint("week", name="uq_review_pools_week"),
    )
    op.create_table(
        "review_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("canonical", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        _fk("review_versions", "decision_id", "review_decisions"),
        sa.PrimaryKeyConstraint("id", name="pk_review_versions"),
        sa.UniqueConstraint("week", "number", name="uq_review_versions_week_number"),
    )
    op.create_index("ix_review_versions_week", "review_versions", ["week"])
    op.create_table(
        "review_objections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("objector_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("target_citizen_id", sa.Integer(), nullable=False),
        sa.Column("target_name", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        _fk("review_objections", "objector_id", "citizens"),
        _fk("review_objections", "target_citizen_id", "citizens"),
        _fk("review_objections", "decision_id", "review_decisions"),
        sa.PrimaryKeyConstraint("id", name="pk_review_objections"),
        sa.UniqueConstraint("week", "objector_id", "target_citizen_id", name="uq_review_objections_entry"),
        sa.CheckConstraint("status IN ('open','rejected','upheld','moot')", name="ck_review_objections_status"),
    )
    op.create_index("ix_review_objections_week", "review_objections", ["week"])
    op.create_index("ix_review_objections_objector_id", "review_objections", ["objector_id"])
    op.create_table(
        "review_finals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("finalized_at", sa.DateTime(), nullable=False),
        sa.Column("claim_deadline", sa.DateTime(), nullable=False),
        sa.Column("announced_at", sa.DateTime(), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_finals"),
        sa.UniqueConstraint("week", name="uq_review_finals_week"),
    )
    op.create_table(
        "review_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("prize", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("redeemed_by", sa.String(128), nullable=True),
        _fk("review_claims", "citizen_id", "citizens"),
        sa.PrimaryKeyConstraint("id", name="pk_review_claims"),
        sa.UniqueConstraint("week", "citizen_id", name="uq_review_claims_week_citizen"),
        sa.UniqueConstraint("code", name="uq_review_claims_code"),
    )
    op.create_index("ix_review_claims_week", "review_claims", ["week"])
    op.create_index("ix_review_claims_citizen_id", "review_claims", ["citizen_id"])

    # the 定榜 is the week's second publication: one record per (week, kind), one notice per (week, kind, citizen)
    with op.batch_alter_table("publications") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="notice"))
        batch.drop_constraint("uq_publications_week", type_="unique")
        batch.create_unique_constraint("uq_publications_week_kind", ["week", "kind"])
    with op.batch_alter_table("winner_notices") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="notice"))
        batch.drop_constraint("uq_winner_notices_week_citizen", type_="unique")
        batch.create_unique_constraint("uq_winner_notices_week_kind_citizen", ["week", "kind", "citizen_id"])

    # weeks announced before the review existed are final as they were (no claim codes, no second article): the
    # finalize job must not announce history again after an upgrade
    op.execute(
        "INSERT INTO review_finals (week, version_number, checksum, finalized_at, claim_deadline, announced_at, "
        "notified_at) SELECT week, 1, 'legacy', published_at, published_at, published_at, published_at "
        "FROM publications WHERE state = 'published' AND published_at IS NOT NULL"
    )

    if op.get_bind().dialect.name == "postgresql":
        for table in SEALED_TABLES:
            op.execute(
                f"CREATE TRIGGER trg_{table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION rewards_snapshot_immutable()"
            )
    else:
        for table in SEALED_TABLES:
            op.execute(SQLITE_TRIGGER.format(table=table))


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for table in SEALED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS trg_{table}_immutable" + (f" ON {table}" if is_pg else ""))
    with op.batch_alter_table("winner_notices") as batch:
        batch.drop_constraint("uq_winner_notices_week_kind_citizen", type_="unique")
        batch.create_unique_constraint("uq_winner_notices_week_citizen", ["week", "citizen_id"])
        batch.drop_column("kind")
    with op.batch_alter_table("publications") as batch:
        batch.drop_constraint("uq_publications_week_kind", type_="unique")
        batch.create_unique_constraint("uq_publications_week", ["week"])
        batch.drop_column("kind")
    for index, table in (
        ("ix_review_claims_citizen_id", "review_claims"),
        ("ix_review_claims_week", "review_claims"),
        ("ix_review_objections_objector_id", "review_objections"),
        ("ix_review_objections_week", "review_objections"),
        ("ix_review_versions_week", "review_versions"),
        ("ix_review_decisions_week", "review_decisions"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "review_claims",
        "review_finals",
        "review_objections",
        "review_versions",
        "review_pools",
        "review_decisions",
    ):
        op.drop_table(table)
