"""audit log and personal data: audit entries, consent with when and how, erasure and
anonymisation markers

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:40:00

New table `audit_entries`. `customers` gains the moment and source of each consent and
`erased_at`; `visits` gains `anonymised_at` (the retention job's mark). Every new column is
nullable: existing rows need nothing (their consent, if any, has no recorded moment).
"""

from alembic import op
import sqlalchemy as sa

from queue_app.core.types import UTCDateTime


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=True),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("path", sa.String(length=255), nullable=True),
        sa.Column("target_type", sa.String(length=40), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_entries_actor_at", ["actor_id", "at"], unique=False)
        batch_op.create_index("ix_audit_entries_branch_at", ["branch_id", "at"], unique=False)
        batch_op.create_index("ix_audit_entries_action_at", ["action", "at"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("consent_contact_at", UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("consent_contact_source", sa.String(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("consent_survey_at", UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("consent_survey_source", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("erased_at", UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymised_at", UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
        batch_op.drop_column("consent_survey_source")
        batch_op.drop_column("consent_survey_at")
        batch_op.drop_column("consent_contact_source")
        batch_op.drop_column("consent_contact_at")

    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_action_at")
        batch_op.drop_index("ix_audit_entries_branch_at")
        batch_op.drop_index("ix_audit_entries_actor_at")
        batch_op.drop_index("ix_audit_entries_at")
    op.drop_table("audit_entries")
