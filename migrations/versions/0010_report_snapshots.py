"""report snapshots: the stored figures of the reports of closed periods

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 11:40:00

A report of a closed period (every business day past, no ticket still active) never
changes: `reports/snapshots.py` stores its figures once, under a key naming the report and
the settings it depends on; later reads are one row by the unique key.
"""
from alembic import op
import sqlalchemy as sa

import queue_app.core.types  # noqa: F401


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('period', sa.String(length=8), nullable=False),
    sa.Column('start_day', sa.Date(), nullable=False),
    sa.Column('end_day', sa.Date(), nullable=False),
    sa.Column('branch_ids', sa.JSON(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('computed_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("period IN ('day', 'week', 'month')", name=op.f('ck_report_snapshots_period')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_snapshots')),
    sa.UniqueConstraint('key', name=op.f('uq_report_snapshots_key'))
    )


def downgrade():
    op.drop_table('report_snapshots')
