"""Webhook secrets sealed at rest

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 20:30:00

`webhook_endpoints.secret` holds the signing secret sealed (`queue_app/core/sealing.py`:
Fernet under a key derived from SECRET_KEY for the purpose "webhook-secret", stored as
`fernet:<token>`), so the column grows to 512 characters and the secrets already there are
sealed with the SECRET_KEY of the application that runs the migration (`flask db upgrade`
reads the same settings as the server). The purpose and the prefix are written out here so
that the migration never changes with the code. Downgrading opens them again.
"""

from alembic import op
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from flask import current_app

from queue_app.core.sealing import derive_key


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

PREFIX = 'fernet:'
PURPOSE = 'webhook-secret'
endpoints = sa.table('webhook_endpoints', sa.column('id', sa.Integer()), sa.column('secret', sa.String()))


def _box():
    config = current_app.config
    keys = [config['SECRET_KEY'], *(config.get('SECRET_KEY_FALLBACKS') or ())]
    return MultiFernet([Fernet(derive_key(key, PURPOSE)) for key in keys if key])


def _rewrite(change):
    conn = op.get_bind()
    rows = conn.execute(sa.select(endpoints.c.id, endpoints.c.secret)).all()
    if not rows:
        return
    box = _box()
    for row_id, secret in rows:
        new = change(box, secret)
        if new != secret:
            conn.execute(endpoints.update().where(endpoints.c.id == row_id).values(secret=new))


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column(
            'secret', existing_type=sa.String(length=128), type_=sa.String(length=512),
            existing_nullable=False,
        )

    def seal(box, secret):
        if secret.startswith(PREFIX):
            return secret
        return PREFIX + box.encrypt(secret.encode()).decode()

    _rewrite(seal)


def downgrade():
    def unseal(box, secret):
        if not secret.startswith(PREFIX):
            return secret
        return box.decrypt(secret[len(PREFIX):].encode()).decode()

    _rewrite(unseal)
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column(
            'secret', existing_type=sa.String(length=512), type_=sa.String(length=128),
            existing_nullable=False,
        )
