"""alerts: threshold rules per branch and service, the alerts they raise and their timeline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 06:39:43

`uq_alerts_open` is a unique partial index (PostgreSQL and SQLite): one open (raised or
acknowledged) alert per rule and subject, so two evaluations at once raise once.
"""
from alembic import op
import sqlalchemy as sa

import queue_app.core.types  # noqa: F401


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alert_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('metric', sa.Enum('longest_wait_s', 'queue_length', 'ewt_s', 'idle_counter_s', 'no_show_rate', name='alert_metric', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('raise_at', sa.Float(), nullable=False),
    sa.Column('clear_at', sa.Float(), nullable=False),
    sa.Column('clear_after_s', sa.Integer(), nullable=False),
    sa.Column('ack_within_s', sa.Integer(), nullable=True),
    sa.Column('window_s', sa.Integer(), nullable=False),
    sa.Column('min_count', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('ack_within_s IS NULL OR ack_within_s > 0', name=op.f('ck_alert_rules_ack_within_s')),
    sa.CheckConstraint('clear_after_s >= 0', name=op.f('ck_alert_rules_clear_after_s')),
    sa.CheckConstraint('clear_at <= raise_at', name=op.f('ck_alert_rules_hysteresis')),
    sa.CheckConstraint('window_s > 0 AND min_count >= 1', name=op.f('ck_alert_rules_window')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_alert_rules_branch_id_branches')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_alert_rules_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules'))
    )
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.create_index('ix_alert_rules_branch', ['branch_id', 'enabled'], unique=False)

    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('counter_id', sa.Integer(), nullable=True),
    sa.Column('metric', sa.Enum('longest_wait_s', 'queue_length', 'ewt_s', 'idle_counter_s', 'no_show_rate', name='alert_metric', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('clear_at', sa.Float(), nullable=False),
    sa.Column('value_raised', sa.Float(), nullable=False),
    sa.Column('current_value', sa.Float(), nullable=True),
    sa.Column('peak_value', sa.Float(), nullable=False),
    sa.Column('status', sa.Enum('raised', 'acknowledged', 'cleared', name='alert_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('raised_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ack_due_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('escalated_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('calm_since', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cleared_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('evaluated_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('level >= 1', name=op.f('ck_alerts_level')),
    sa.ForeignKeyConstraint(['acknowledged_by_id'], ['users.id'], name=op.f('fk_alerts_acknowledged_by_id_users')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_alerts_branch_id_branches')),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_alerts_counter_id_counters')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_alerts_owner_id_users')),
    sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], name=op.f('fk_alerts_rule_id_alert_rules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_alerts_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_branch_raised', ['branch_id', 'raised_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_alerts_status_ack_due', ['status', 'ack_due_at'], unique=False)
        batch_op.create_index('uq_alerts_open', ['rule_id', 'subject'], unique=True, postgresql_where=sa.text("status <> 'cleared'"), sqlite_where=sa.text("status <> 'cleared'"))

    op.create_table('alert_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('raised', 'acknowledged', 'escalated', 'calming', 'relapsed', 'cleared', name='alert_step_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_alert_steps_actor_id_users')),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_steps_alert_id_alerts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_steps'))
    )
    with op.batch_alter_table('alert_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_steps_alert_id'), ['alert_id'], unique=False)



def downgrade():
    with op.batch_alter_table('alert_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_steps_alert_id'))

    op.drop_table('alert_steps')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_alerts_open', postgresql_where=sa.text("status <> 'cleared'"), sqlite_where=sa.text("status <> 'cleared'"))
        batch_op.drop_index('ix_alerts_status_ack_due')
        batch_op.drop_index(batch_op.f('ix_alerts_owner_id'))
        batch_op.drop_index('ix_alerts_branch_raised')

    op.drop_table('alerts')
    with op.batch_alter_table('alert_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_alert_rules_branch')

    op.drop_table('alert_rules')
