"""A read-only unit of work (realtime pushes) never waits for a writer.

On SQLite every ordinary transaction is `BEGIN IMMEDIATE`, which queues behind an open write
transaction (busy timeout 30 s); `core.db.read_only` makes the next transaction a deferred
reader, which in WAL mode reads its snapshot while the writer goes on.
"""

from datetime import UTC, datetime

from sqlalchemy import func, select, text

from queue_app.core.db import read_only
from queue_app.extensions import db
from queue_app.tickets.models import Ticket

from . import factories


def test_a_reader_reads_while_a_writer_holds_its_transaction(app_ctx):
    branch = factories.branch("JKT01")
    factories.ticket(branch, now=datetime.now(UTC))
    db.session.commit()
    db.session.remove()

    with db.engine.connect() as writer:
        writer.begin()  # BEGIN IMMEDIATE on SQLite: the write lock, held
        writer.execute(text("UPDATE branches SET name = 'Sedang diubah' WHERE code = 'JKT01'"))
        reader = db.session
        read_only(reader)
        # the committed state, at once, while the writer's change is still open
        assert reader.scalar(select(func.count()).select_from(Ticket)) == 1
        assert reader.scalar(text("SELECT name FROM branches WHERE code = 'JKT01'")) != (
            "Sedang diubah"
        )
        reader.rollback()
        writer.rollback()
