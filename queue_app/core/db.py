"""Engine set-up that makes both backends safe under concurrency."""

from sqlalchemy import event
from sqlalchemy.engine import Engine


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        _sqlite_immediate(engine)


def _sqlite_immediate(engine: Engine) -> None:
    """Every transaction is `BEGIN IMMEDIATE` with a busy timeout, in WAL mode.

    With pysqlite's own transaction handling a transaction starts deferred and takes the write
    lock only at its first write, so two read-then-write transactions interleave and issue the
    same number. `BEGIN IMMEDIATE` takes the write lock up front: write transactions are
    serialized, and a second writer waits (busy timeout) instead of failing.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
