"""Writing the journey event log and announcing the change after commit.

Services call `record()` as they change things. The entries wait in the session and are
numbered and written just before the commit (`before_commit`): the branch's event sequence
row is the one row every change in a branch touches, so it is taken as late as possible and
held only for the final insert and the commit itself, not for the whole unit of work. A
rollback drops the waiting entries with everything else.

Just before they are numbered, `journal.recorded` is sent inside the unit of work
(`core.events.in_transaction`, with the session and the entries): what must be written with
the changes they describe (the queue's notifications, `notify/queue_alerts.py`) is added then,
once the unit of work's changes are all made, and before the branch's row is taken.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from ..branches.models import Branch
from ..core.events import in_transaction, publish
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
    # branches in id order, so two transactions never wait on each other's branch rows
    for branch_id in sorted(by_branch):
        batch = by_branch[branch_id]
        last = session.execute(
            update(Branch)
            .where(Branch.id == branch_id)
            .values(event_seq=Branch.event_seq + len(batch))
            .returning(Branch.event_seq)
            .execution_options(synchronize_session=False)
        ).scalar_one()
        for seq, entry in enumerate(batch, start=last - len(batch) + 1):
            entry.seq = seq
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


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(_KEY, None)
