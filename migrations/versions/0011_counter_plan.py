"""counter plan: each counter's staffed hours and planned breaks per weekday

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00

`counters.plan` is a nullable JSON column: no plan (NULL, the existing rows) means the
branch's opening hours and no breaks, so existing rows need nothing.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('counters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plan', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('counters', schema=None) as batch_op:
        batch_op.drop_column('plan')
