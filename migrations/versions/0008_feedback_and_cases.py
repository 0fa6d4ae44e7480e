"""feedback and cases: surveys per touchpoint, responses, invitations; cases and their steps

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 03:36:13

`tickets.quoted_wait_s` keeps the wait the customer was told at issue (existing rows: unknown).
`tickets.previous_id` gets its index (a transfer's successor; deletes check it).
A device can be a feedback tablet (`device_kind` "feedback") paired with one counter.
"""
from alembic import op
import sqlalchemy as sa

import queue_app.core.types  # noqa: F401


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('survey_configs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=True),
    sa.Column('ask_nps', sa.Boolean(), nullable=False),
    sa.Column('ask_csat', sa.Boolean(), nullable=False),
    sa.Column('ask_ces', sa.Boolean(), nullable=False),
    sa.Column('ask_comment', sa.Boolean(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('sample_percent', sa.Integer(), nullable=False),
    sa.Column('quiet_days', sa.Integer(), nullable=False),
    sa.Column('link_valid_days', sa.Integer(), nullable=False),
    sa.Column('escalate_nps_max', sa.Integer(), nullable=True),
    sa.Column('escalate_csat_max', sa.Integer(), nullable=True),
    sa.Column('escalate_ces_max', sa.Integer(), nullable=True),
    sa.Column('escalate_reasons', sa.JSON(), nullable=False),
    sa.Column('escalate_keywords', sa.JSON(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('link_valid_days >= 1', name=op.f('ck_survey_configs_link_valid_days')),
    sa.CheckConstraint('quiet_days >= 0', name=op.f('ck_survey_configs_quiet_days')),
    sa.CheckConstraint('sample_percent BETWEEN 0 AND 100', name=op.f('ck_survey_configs_sample_percent')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_survey_configs_branch_id_branches')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_survey_configs_owner_id_users')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_survey_configs_service_id_services')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_survey_configs')),
    sa.UniqueConstraint('branch_id', 'service_id', name=op.f('uq_survey_configs_branch_id_service_id'))
    )
    op.create_table('feedback_invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.Enum('sent', 'skipped', name='invitation_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('reason', sa.Enum('sampled_out', 'recently_invited', 'open_case', 'no_contact', 'no_consent', 'already_rated', 'not_served', 'survey_off', name='skip_reason', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('created_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_feedback_invitations_customer_id_customers')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_feedback_invitations_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_invitations')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_feedback_invitations_ticket_id'))
    )
    with op.batch_alter_table('feedback_invitations', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_invitations_customer', ['customer_id', 'created_at'], unique=False)

    op.create_table('feedback_responses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('visit_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('counter_id', sa.Integer(), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.Enum('tablet', 'qr', 'link', 'api', name='feedback_channel', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('nps', sa.Integer(), nullable=True),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('ces', sa.Integer(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('submitted_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('business_day', sa.Date(), nullable=False),
    sa.Column('wait_s', sa.Integer(), nullable=True),
    sa.Column('quoted_wait_s', sa.Integer(), nullable=True),
    sa.Column('service_s', sa.Integer(), nullable=True),
    sa.Column('transfers', sa.Integer(), nullable=False),
    sa.CheckConstraint('ces IS NULL OR ces BETWEEN 1 AND 5', name=op.f('ck_feedback_responses_ces')),
    sa.CheckConstraint('csat IS NULL OR csat BETWEEN 1 AND 5', name=op.f('ck_feedback_responses_csat')),
    sa.CheckConstraint('nps IS NULL OR nps BETWEEN 0 AND 10', name=op.f('ck_feedback_responses_nps')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_feedback_responses_branch_id_branches')),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_feedback_responses_counter_id_counters')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_feedback_responses_customer_id_customers')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_feedback_responses_service_id_services')),
    sa.ForeignKeyConstraint(['staff_id'], ['users.id'], name=op.f('fk_feedback_responses_staff_id_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_feedback_responses_ticket_id_tickets')),
    sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], name=op.f('fk_feedback_responses_visit_id_visits')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback_responses')),
    sa.UniqueConstraint('ticket_id', name=op.f('uq_feedback_responses_ticket_id'))
    )
    with op.batch_alter_table('feedback_responses', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_responses_branch_day', ['branch_id', 'business_day'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_responses_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_responses_staff_id'), ['staff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_responses_visit_id'), ['visit_id'], unique=False)

    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('open', 'acknowledged', 'resolved', name='case_status', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('department', sa.String(length=80), nullable=True),
    sa.Column('triggers', sa.JSON(), nullable=False),
    sa.Column('opened_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_contact_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', queue_app.core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('root_cause', sa.Enum('policy', 'people', 'process', 'product', 'place', name='root_cause', native_enum=False, create_constraint=True), nullable=True),
    sa.Column('reason_code', sa.String(length=40), nullable=True),
    sa.Column('action_taken', sa.Text(), nullable=True),
    sa.Column('recovery_nps', sa.Integer(), nullable=True),
    sa.CheckConstraint('level >= 1', name=op.f('ck_cases_level')),
    sa.ForeignKeyConstraint(['branch_id'], ['branches.id'], name=op.f('fk_cases_branch_id_branches')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_cases_customer_id_customers')),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_cases_owner_id_users')),
    sa.ForeignKeyConstraint(['response_id'], ['feedback_responses.id'], name=op.f('fk_cases_response_id_feedback_responses')),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_cases_service_id_services')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_cases_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('response_id', name=op.f('uq_cases_response_id'))
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_branch_opened', ['branch_id', 'opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index('ix_cases_status_due', ['status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('case_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('opened', 'acknowledged', 'contact', 'note', 'reassigned', 'escalated', 'resolved', 'recovery_sent', 'recovery_answered', 'reopened', name='case_step_kind', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', queue_app.core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_case_steps_actor_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_steps_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_steps'))
    )
    with op.batch_alter_table('case_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_steps_case_id'), ['case_id'], unique=False)

    # a third device kind: the CHECK constraint of the kind grows with it (and the column, to 8)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counter_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint(op.f("ck_devices_device_kind"), type_="check")
        batch_op.alter_column(
            "kind", existing_type=sa.String(7), type_=sa.String(8), existing_nullable=False
        )
        batch_op.create_check_constraint(
            op.f("ck_devices_device_kind"), "kind IN ('kiosk', 'display', 'feedback')"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_devices_counter_id_counters"),
            "counters",
            ["counter_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quoted_wait_s', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_tickets_previous_id'), ['previous_id'], unique=False)



def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_previous_id'))
        batch_op.drop_column('quoted_wait_s')

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_devices_counter_id_counters"), type_="foreignkey")
        batch_op.drop_constraint(op.f("ck_devices_device_kind"), type_="check")
        batch_op.alter_column(
            "kind", existing_type=sa.String(8), type_=sa.String(7), existing_nullable=False
        )
        batch_op.create_check_constraint(
            op.f("ck_devices_device_kind"), "kind IN ('kiosk', 'display')"
        )
        batch_op.drop_column("counter_id")

    with op.batch_alter_table('case_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_steps_case_id'))

    op.drop_table('case_steps')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cases_ticket_id'))
        batch_op.drop_index('ix_cases_status_due')
        batch_op.drop_index(batch_op.f('ix_cases_owner_id'))
        batch_op.drop_index(batch_op.f('ix_cases_customer_id'))
        batch_op.drop_index('ix_cases_branch_opened')

    op.drop_table('cases')
    with op.batch_alter_table('feedback_responses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_responses_visit_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_responses_staff_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_responses_customer_id'))
        batch_op.drop_index('ix_feedback_responses_branch_day')

    op.drop_table('feedback_responses')
    with op.batch_alter_table('feedback_invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_invitations_customer')

    op.drop_table('feedback_invitations')
    op.drop_table('survey_configs')
