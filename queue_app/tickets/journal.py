"""Writing the journey event log and announcing the change after commit.

Services call `record()` as they change things. The entries wait in the session and are
numbered and written just before the commit (`before_commit`): the branch's event sequence
row is the one row every change in a branch touches, so it is taken as late as possible and
held only for the final insert and the commit itself, not for the whole unit of work. A
rollback drops the waiting entries with everything else.

On PostgreSQL one statement per branch takes the numbers and writes that branch's entries
(`_insert_of`: `WITH b AS (UPDATE branches ... RETURNING event_seq) INSERT INTO
journey_events ... SELECT`, as `fastpath.py` does for an issue): one round trip fewer on
every change, and the branch's row is held for one round trip less. On SQLite the number is
taken, then the ORM's flush inserts the entries.

Just before they are numbered, `journal.recorded` is sent inside the unit of work
(`core.events.in_transaction`, with the session and the entries): what must be written with
the changes they describe (the queue's notifications, `notify/queue_alerts.py`) is added then,
once the unit of work's changes are all made, and before the branch's row is taken.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import JSON, bindparam, event, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import TextClause

from ..branches.models import Branch
from ..core.db import is_postgres
from ..core.events import in_transaction, publish
from ..core.types import UTCDateTime
from .models import JourneyEvent, Ticket

_KEY = "queue_app.pending_journal"


def record(
    kind: str,
    *,
    session: Session,
    branch_id: int,
    now: datetime,
    ticket: Ticket | None = None,
    counter_id: int | None = None,
    actor_id: int | None = None,
    from_status: str | None = None,
    data: dict | None = None,
) -> JourneyEvent:
    entry = JourneyEvent(
        branch_id=branch_id,
        at=now,
        kind=kind,
        visit_id=ticket.visit_id if ticket else None,
        ticket_id=ticket.id if ticket else None,
        counter_id=counter_id
        if counter_id is not None
        else (ticket.counter_id if ticket else None),
        actor_id=actor_id,
        from_status=from_status,
        to_status=ticket.status.value if ticket else None,
        data=data,
    )
    session.info.setdefault(_KEY, []).append(entry)
    return entry


def pending(session: Session) -> list[JourneyEvent]:
    return list(session.info.get(_KEY, ()))


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: numbered at the real commit
        return
    entries = session.info.pop(_KEY, None)
    if not entries:
        return
    in_transaction("journal.recorded", session=session, entries=entries)
    by_branch: dict[int, list[JourneyEvent]] = defaultdict(list)
    for entry in entries:
        by_branch[entry.branch_id].append(entry)
    postgres = is_postgres(session)
    # branches in id order, so two transactions never wait on each other's branch rows
    for branch_id in sorted(by_branch):
        batch = by_branch[branch_id]
        if postgres:
            last = _number_and_insert(session, branch_id, batch)
        else:
            last = session.execute(
                update(Branch)
                .where(Branch.id == branch_id)
                .values(event_seq=Branch.event_seq + len(batch))
                .returning(Branch.event_seq)
                .execution_options(synchronize_session=False)
            ).scalar_one()
        _keep_number(session, branch_id, last)
        for seq, entry in enumerate(batch, start=last - len(batch) + 1):
            entry.seq = seq
            if not postgres:
                session.add(entry)
            publish(
                session,
                "journey",
                branch_id=branch_id,
                seq=seq,
                kind=entry.kind,
                ticket_id=entry.ticket_id,
                counter_id=entry.counter_id,
            )


COLUMNS = ("at", "kind", "visit_id", "ticket_id", "counter_id", "actor_id", "from_status")
COLUMNS += ("to_status", "data")
_TYPES = {
    "at": UTCDateTime(),
    "data": JSON(),
}
_CASTS = {
    "at": "timestamptz",
    "visit_id": "integer",
    "ticket_id": "integer",
    "counter_id": "integer",
    "actor_id": "integer",
    "kind": "varchar",
    "from_status": "varchar",
    "to_status": "varchar",
    "data": "json",
}
_INSERTS: dict[int, TextClause] = {}


def _insert_of(n: int) -> TextClause:
    """`n` entries of one branch, numbered and written by one statement: the branch's row is
    taken (`UPDATE ... RETURNING`) and the entries inserted with the numbers it gives."""
    statement = _INSERTS.get(n)
    if statement is None:
        rows = ",\n".join(
            "(" + ", ".join([str(i)] + [f"CAST(:{c}_{i} AS {_CASTS[c]})" for c in COLUMNS]) + ")"
            for i in range(1, n + 1)
        )
        statement = text(
            f"""
WITH b AS (
  UPDATE branches SET event_seq = branches.event_seq + {n}
  WHERE branches.id = :branch_id
  RETURNING branches.event_seq
)
INSERT INTO journey_events (branch_id, seq, {", ".join(COLUMNS)})
SELECT :branch_id, b.event_seq - {n} + v.ord, {", ".join(f"v.{c}" for c in COLUMNS)}
FROM b, (VALUES {rows}) AS v(ord, {", ".join(COLUMNS)})
RETURNING journey_events.seq
"""  # the statement's shape comes from this module's constants; values are parameters  # nosec B608
        ).bindparams(
            *(bindparam(f"{c}_{i}", type_=_TYPES[c]) for i in range(1, n + 1) for c in _TYPES)
        )
        _INSERTS[n] = statement
    return statement


def _number_and_insert(session: Session, branch_id: int, batch: list[JourneyEvent]) -> int:
    """PostgreSQL: number and write one branch's entries in one round trip (the SQLite path
    takes the number, then the ORM's flush writes the entries). Returns the last number.
    The entries stay out of the session: nothing reads them back from it."""
    params = {"branch_id": branch_id}
    for i, entry in enumerate(batch, start=1):
        for column in COLUMNS:
            params[f"{column}_{i}"] = getattr(entry, column)
    seqs = session.execute(_insert_of(len(batch)), params).scalars().all()
    return max(seqs)


def _keep_number(session: Session, branch_id: int, last: int) -> None:
    """The branch this session holds learns the number its commit takes: the session keeps
    its objects after a commit (`expire_on_commit=False`), and an answer read after the commit
    (the counter screen's state) would otherwise carry the number from before its own change,
    older than what it shows."""
    branch = session.identity_map.get(identity_key(Branch, branch_id))
    if branch is not None:
        set_committed_value(branch, "event_seq", last)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_KEY, None)
