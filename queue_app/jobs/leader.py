"""Exactly one scheduler at a time: the one that holds the scheduler lock runs the jobs; another
started by mistake (or as a spare) stands by and takes over when the first dies.

The lock is the database's own: on PostgreSQL a session advisory lock held on one connection
for the life of the leader (PostgreSQL frees it the moment that session ends: the process
killed, the machine gone, the connection cut); on SQLite, whose processes share one machine, an
exclusive `flock` on a file next to the database (the kernel frees it when the process dies).

`run(app, ...)` is the loop of `flask --app queue_app jobs run` and of the embedded profile's
scheduler thread: try the lock; as leader start the jobs and check every `poll_s` that the lock
is still held (on PostgreSQL a query on the lock's connection: after a database restart the
session and its lock are gone, so the jobs stop and the process stands by until it wins the lock
again); as standby try again every `poll_s`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import zlib
from pathlib import Path

from sqlalchemy import text

from ..extensions import db

log = logging.getLogger(__name__)
LOCK_KEY = zlib.crc32(b"queue_app.scheduler")  # the advisory lock's key (a fixed bigint)


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own."""

    def __init__(self, engine):
        self.engine = engine
        self.conn = None

    def acquire(self) -> bool:
        self.release()
        try:
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
            conn.commit()
        except Exception:
            log.warning("scheduler lock: the database cannot be reached", exc_info=True)
            return False
        if got:
            self.conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.execute(text("SELECT 1")).scalar()
            self.conn.commit()
            return True
        except Exception:
            log.warning("scheduler lock: its database session is gone", exc_info=True)
            return False

    def release(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # gone: the session, and the lock with it
                self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self.conn.commit()
            with contextlib.suppress(Exception):  # never back to the pool
                self.conn.invalidate()
            self.conn = None


class FileLock:
    """An exclusive `flock` on a file (SQLite: the processes share the machine)."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = None

    def acquire(self) -> bool:
        if self.handle is not None:
            return True
        handle = open(self.path, "a")  # noqa: SIM115 (held for the life of the leader)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self.handle = handle
        return True

    def held(self) -> bool:
        return self.handle is not None

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def scheduler_lock(app):
    """The lock for the app's database."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    database = engine.url.database
    if database and database != ":memory:":
        path = Path(database).with_name(Path(database).name + ".scheduler.lock")
    else:
        path = Path(app.instance_path) / "scheduler.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path)


def run(app, make_scheduler, *, poll_s: float, stop: threading.Event, say=log.info) -> None:
    """Lead or stand by until `stop` is set. `make_scheduler()` gives a fresh, not started
    APScheduler BackgroundScheduler with the jobs; `say` reports each change of role."""
    with app.app_context():
        lock = scheduler_lock(app)
    standing_by = False
    try:
        while not stop.is_set():
            if not lock.acquire():
                if not standing_by:
                    say(f"scheduler: standby (another scheduler holds the lock), pid {os.getpid()}")
                    standing_by = True
                stop.wait(poll_s)
                continue
            standing_by = False
            scheduler = make_scheduler()
            scheduler.start()
            jobs = ", ".join(job.id for job in scheduler.get_jobs())
            say(f"scheduler: leader, pid {os.getpid()}: {jobs}")
            try:
                while not stop.wait(poll_s):
                    if not lock.held():
                        say("scheduler: lost the lock, stopping the jobs and standing by")
                        break
            finally:
                scheduler.shutdown(wait=True)
                lock.release()
    finally:
        lock.release()
