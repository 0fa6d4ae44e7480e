"""The SQL statements a test's own thread sends: to count them, or to see which tables they read.

Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is left out, and so is what
other threads send meanwhile (the realtime pusher and the after-commit workers read on threads
of their own)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from queue_app.extensions import db

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements_sent() -> Iterator[list[str]]:
    """`with statements_sent() as sent:` ... `sent` is the list of this thread's statements."""
    sent: list[str] = []
    me = threading.get_ident()

    def before(_conn, _cursor, statement, *_args):
        if threading.get_ident() == me and not statement.lstrip().upper().startswith(CONTROL):
            sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def first_table(statement: str) -> str:
    """The table a SELECT reads first (after its first FROM), or the statement itself."""
    found = re.search(r"\bFROM\s+(\w+)", statement, re.IGNORECASE)
    return found.group(1) if found else statement
