"""virtual mobile queue: arrival confirmation, move-back settings, contact verification

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:05:00

`tickets.arrival_confirmed` is true for every ticket but a remote one whose customer has not
said "I'm here" yet (existing rows: true); `moved_back_count` counts how often such a ticket
went back in its queue. `branches.remote_intake`, `remote_move_back_places` and
`remote_move_back_limit` are the branch's settings. `contact_verifications` holds the one-time
codes (one row per phone number or e-mail address).
"""

import sqlalchemy as sa
from alembic import op

import queue_app.core.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("remote_intake", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("remote_move_back_places", sa.Integer(), server_default="3", nullable=False)
        )
        batch_op.add_column(
            sa.Column("remote_move_back_limit", sa.Integer(), server_default="2", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_branches_remote_move_back"),
            "remote_move_back_places >= 1 AND remote_move_back_limit >= 0",
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("arrival_confirmed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "arrival_confirmed_at",
                queue_app.core.types.UTCDateTime(timezone=True),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("moved_back_count", sa.Integer(), server_default="0", nullable=False)
        )

    op.create_table(
        "contact_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=True),
        sa.Column("service_id", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("expires_at", queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "window_started_at", queue_app.core.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("window_count", sa.Integer(), nullable=False),
        sa.Column("verified_at", queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "attempts >= 0 AND window_count >= 0", name=op.f("ck_contact_verifications_counts")
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_contact_verifications_branch_id_branches"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_contact_verifications_service_id_services"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_verifications")),
        sa.UniqueConstraint("contact", name=op.f("uq_contact_verifications_contact")),
    )


def downgrade():
    op.drop_table("contact_verifications")

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("moved_back_count")
        batch_op.drop_column("arrival_confirmed_at")
        batch_op.drop_column("arrival_confirmed")

    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_branches_remote_move_back"), type_="check")
        batch_op.drop_column("remote_move_back_limit")
        batch_op.drop_column("remote_move_back_places")
        batch_op.drop_column("remote_intake")
