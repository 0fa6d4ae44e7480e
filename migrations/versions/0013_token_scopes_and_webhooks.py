"""API token scopes and webhooks

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 15:00:00

`api_tokens.scopes` (JSON list, not null). The tokens that exist get the scopes of everything
the API let them do before scopes existed (`accounts.scopes.LEGACY_SCOPES`, written out here so
that the migration never changes with the code): they keep working exactly as before, and do
not gain the CSV exports, which came with scopes. An explicit list rather than a "legacy: all"
marker: what an old token may do is visible and can be narrowed like any other's, and a scope
added later is never granted to it silently.

New tables `webhook_endpoints` and `webhook_deliveries`.
"""

from alembic import op
import sqlalchemy as sa

from queue_app.core.types import UTCDateTime


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

LEGACY_SCOPES = [
    'alerts:read',
    'alerts:write',
    'cases:read',
    'cases:write',
    'feedback:read',
    'reports:read',
    'settings:read',
    'settings:write',
    'tickets:read',
    'tickets:write',
]


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True))
    api_tokens = sa.table('api_tokens', sa.column('scopes', sa.JSON()))
    op.execute(api_tokens.update().values(scopes=LEGACY_SCOPES))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.alter_column('scopes', existing_type=sa.JSON(), nullable=False)

    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('url', sa.String(length=500), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['branch_id'], ['branches.id'],
            name=op.f('fk_webhook_endpoints_branch_id_branches'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    )
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_webhook_endpoints_branch_id'), ['branch_id'], unique=False
        )

    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('uid', sa.String(length=36), nullable=False),
        sa.Column('endpoint_id', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(length=32), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column(
            'status',
            sa.Enum(
                'pending', 'delivered', 'failed',
                name='webhook_delivery_status', native_enum=False, create_constraint=True,
                length=9,
            ),
            nullable=False,
        ),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('next_try_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('replays', sa.Integer(), nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['endpoint_id'], ['webhook_endpoints.id'],
            name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
        sa.UniqueConstraint('uid', name=op.f('uq_webhook_deliveries_uid')),
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_due', ['status', 'next_try_at'], unique=False)
        batch_op.create_index(
            'ix_webhook_deliveries_endpoint', ['endpoint_id', 'created_at'], unique=False
        )


def downgrade():
    op.drop_table('webhook_deliveries')
    op.drop_table('webhook_endpoints')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('scopes')
