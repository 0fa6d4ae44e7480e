"""Engine set-up that makes both backends safe under concurrency."""

from sqlalchemy import event
from sqlalchemy.engine import Engine

READ_ONLY = "queue_app_read_only"


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
        # a read-only unit of work asks for a deferred BEGIN (see `read_only`): in WAL mode it
        # reads a snapshot and never waits for, nor holds up, the writers
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def read_only(session) -> None:
    """Start the session's next transaction as a reader.

    Call it before the first query of a transaction that will never write (realtime pushes,
    snapshots). On SQLite that transaction does not take the write lock; elsewhere it changes
    nothing.
    """
    session.connection(execution_options={READ_ONLY: True})


def is_postgres(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
