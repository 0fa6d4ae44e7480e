"""partial index of the waiting tickets of each service queue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:46:00

Every ticket issued counts the tickets ahead of it in its service's queue (its position).
`ix_tickets_queue` finds the branch's waiting tickets of the service but must visit each
one to check `target_counter_id`; this index holds only the waiting tickets of service
queues, so the count reads the index alone and the index stays as small as the queues.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WHERE = "status = 'waiting' AND target_counter_id IS NULL"


def upgrade():
    op.create_index(
        "ix_tickets_waiting",
        "tickets",
        ["branch_id", "service_id", "queue_since"],
        unique=False,
        postgresql_where=sa.text(WHERE),
        sqlite_where=sa.text(WHERE),
    )


def downgrade():
    op.drop_index("ix_tickets_waiting", table_name="tickets")
