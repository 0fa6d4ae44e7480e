"""Fixtures: one migrated database per test session, emptied after every test that used it.

The database is SQLite (a file in a temporary folder) unless `DATABASE_URL` names another
one, which CI points at a real PostgreSQL. The schema comes from the Alembic migrations, not
from `create_all`, so the migrations are what is tested.
"""

import os
import time
from datetime import UTC, datetime

import flask_migrate
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from queue_app import create_app
from queue_app.config import normalise_database_url
from queue_app.extensions import db

from . import factories
from .apihelp import build_floor, fast_passwords, isolated_client
from .outboxes import gateway, smtp  # noqa: F401 (fixtures for every test)


def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return normalise_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


def _reset_schema(app):
    """Drop everything in the test database so the migrations start from nothing."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=_database_url(tmp_path_factory))
    with app.app_context():
        _reset_schema(app)
        flask_migrate.upgrade()
    return app


def _table_names():
    return [t.name for t in reversed(db.metadata.sorted_tables)]


def empty_database():
    """Delete every row. A live server of a browser test may still be reading (a poll, a
    realtime push after the page closed): on PostgreSQL TRUNCATE then waits for it, and when a
    reader asks for a second table TRUNCATE already holds, PostgreSQL breaks the deadlock by
    failing one of the two. Either way nothing was deleted, so try again."""
    from queue_app.waits import live

    live.clear_cache()  # keyed by branch id and event sequence, which the next rows reuse
    from queue_app.observability import metrics

    metrics.clear_cache()  # branch codes by id, which the next rows reuse
    from queue_app.webhooks import services as webhooks

    db.session.remove()
    engine = db.engine
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(
                        text(f"TRUNCATE {', '.join(_table_names())} RESTART IDENTITY CASCADE")
                    )
                else:
                    for name in _table_names():
                        conn.execute(text(f"DELETE FROM {name}"))
            webhooks.clear_cache()  # the active endpoints, deleted behind the cache's back
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture
def app_ctx(app):
    """An application context on an empty database."""
    with app.app_context():
        yield app
        empty_database()


@pytest.fixture
def client(app_ctx):
    """Every request in its own application context and session, as in a server (see
    tests/apihelp.py): a view that forgets to commit, or state left on `g`, shows up."""
    return isolated_client(app_ctx)


@pytest.fixture
def floor(make, monkeypatch):
    """JKT01 and MNL01 with staff, manager, admin, CX agent, executive and an outsider, each
    with a token (tests/apihelp.py `build_floor`). Engine tests define a floor of their own."""
    fast_passwords(monkeypatch)
    return build_floor(make)


@pytest.fixture
def session(app_ctx):
    return db.session


@pytest.fixture
def now():
    """A Tuesday morning in Jakarta (03:00 UTC = 10:00 WIB), inside opening hours."""
    return datetime(2026, 3, 3, 3, 0, tzinfo=UTC)


@pytest.fixture
def is_postgres(app):
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


@pytest.fixture
def make(app_ctx):
    """The factories (tests/factories.py), bound to the test's application context."""
    return factories
