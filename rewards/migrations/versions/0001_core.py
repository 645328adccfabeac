"""core: citizens, cases, case history, audit log, ledger

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("openid", sa.String(128), nullable=False),
        sa.Column("name", sa.String(64)),
        sa.Column("phone", sa.String(32)),
        sa.Column("district", sa.String(64)),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("banned", sa.Boolean(), nullable=False),
        sa.Column("snapshot_user", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_citizens"),
        sa.UniqueConstraint("openid", name="uq_citizens_openid"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("reporter_id", sa.Integer(), sa.ForeignKey("citizens.id", name="fk_cases_reporter_id_citizens")),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("lat", sa.Float()),
        sa.Column("lon", sa.Float()),
        sa.Column("coord_system", sa.String(8), nullable=False),
        sa.Column("address", sa.String(256)),
        sa.Column("district", sa.String(64)),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at", sa.DateTime(), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("verdict_reason", sa.Text()),
        sa.Column("duplicate_of", sa.String(64)),
        sa.Column("department", sa.String(128)),
        sa.Column("award_note", sa.Text()),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("case_id", name="uq_cases_case_id"),
    )
    op.create_index("ix_cases_reporter_id", "cases", ["reporter_id"])
    op.create_index("ix_cases_district", "cases", ["district"])
    op.create_index("ix_cases_status_reported_at", "cases", ["status", "reported_at"])
    op.create_table(
        "case_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("cases.id", name="fk_case_history_case_pk_cases"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("department", sa.String(128)),
        sa.Column("note", sa.Text()),
        sa.Column("event_id", sa.String(128)),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_history"),
    )
    op.create_index("ix_case_history_case_occurred", "case_history", ["case_pk", "occurred_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "citizen_id",
            sa.Integer(),
            sa.ForeignKey("citizens.id", name="fk_ledger_entries_citizen_id_citizens"),
            nullable=False,
        ),
        sa.Column("case_pk", sa.Integer(), sa.ForeignKey("cases.id", name="fk_ledger_entries_case_pk_cases"), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("case_pk", "rule", name="uq_ledger_case_rule"),
    )
    op.create_index("ix_ledger_entries_citizen_id", "ledger_entries", ["citizen_id"])
    op.create_index("ix_ledger_entries_week", "ledger_entries", ["week"])


def downgrade() -> None:
    for table in ("ledger_entries", "audit_log", "case_history", "cases", "citizens"):
        op.drop_table(table)
