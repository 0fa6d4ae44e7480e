"""Writing the journey event log and announcing the change after commit."""

from datetime import datetime

from sqlalchemy import update

from ..branches.models import Branch
from ..core.events import publish
from ..extensions import db
from .models import JourneyEvent, Ticket


def next_branch_seq(branch_id: int) -> int:
    """Take the branch's next event number (row-locked until the transaction ends)."""
    return db.session.execute(
        update(Branch)
        .where(Branch.id == branch_id)
        .values(event_seq=Branch.event_seq + 1)
        .returning(Branch.event_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()


def record(
    kind: str,
    *,
    branch_id: int,
    now: datetime,
    ticket: Ticket | None = None,
    counter_id: int | None = None,
    actor_id: int | None = None,
    from_status: str | None = None,
    data: dict | None = None,
) -> JourneyEvent:
    seq = next_branch_seq(branch_id)
    entry = JourneyEvent(
        branch_id=branch_id,
        seq=seq,
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
    db.session.add(entry)
    publish(
        db.session,
        "journey",
        branch_id=branch_id,
        seq=seq,
        kind=kind,
        ticket_id=entry.ticket_id,
        counter_id=entry.counter_id,
    )
    return entry
