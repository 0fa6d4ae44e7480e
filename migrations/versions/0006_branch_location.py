"""branch location and hourly wait statistics (busy hours)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 23:55:00

`branches.latitude` / `longitude` (WGS 84 degrees, nullable) place a branch for the list of
nearby branches with shorter waits. `wait_stats` holds, per branch, service, local day and
local hour, how many tickets were first called that arrived in the hour and their median and
total wait; the nightly `roll_up_waits` job fills it so the busy-hours chart reads a few
hundred rows instead of weeks of tickets.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("longitude", sa.Float(), nullable=True))

    op.create_table(
        "wait_stats",
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hour", sa.SmallInteger(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("median_wait_s", sa.Integer(), nullable=False),
        sa.Column("total_wait_s", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("hour >= 0 AND hour <= 23", name=op.f("ck_wait_stats_hour")),
        sa.CheckConstraint("weekday >= 0 AND weekday <= 6", name=op.f("ck_wait_stats_weekday")),
        sa.CheckConstraint("samples >= 1", name=op.f("ck_wait_stats_samples")),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.id"], name=op.f("fk_wait_stats_branch_id_branches")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["services.id"], name=op.f("fk_wait_stats_service_id_services")
        ),
        sa.PrimaryKeyConstraint(
            "branch_id", "service_id", "day", "hour", name=op.f("pk_wait_stats")
        ),
    )


def downgrade():
    op.drop_table("wait_stats")
    with op.batch_alter_table("branches", schema=None) as batch_op:
        batch_op.drop_column("longitude")
        batch_op.drop_column("latitude")
