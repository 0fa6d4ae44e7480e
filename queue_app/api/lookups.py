"""Loading what a URL names, or answering 404 with a message."""

from flask import abort
from sqlalchemy import select

from ..branches.models import Branch, Counter, Service
from ..extensions import db
from ..tickets.models import Ticket


def branch_or_404(code: str) -> Branch:
    branch = db.session.scalar(select(Branch).where(Branch.code == code, Branch.active.is_(True)))
    if branch is None:
        abort(404, description=f"no branch {code!r}")
    return branch


def service_or_404(branch: Branch, code: str, status: int = 404) -> Service:
    service = db.session.scalar(
        select(Service).where(Service.branch_id == branch.id, Service.code == code)
    )
    if service is None:
        abort(status, description=f"branch {branch.code} has no service {code!r}")
    return service


def counter_or_404(counter_id: int) -> Counter:
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404, description=f"no counter {counter_id}")
    return counter


def ticket_or_404(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        abort(404, description=f"no ticket {ticket_id}")
    return ticket
