"""Loading what a URL (or a request body) names, or answering 404 (or 422) with a message."""

import contextlib

from flask import abort
from flask_smorest import abort as abort_with
from sqlalchemy import select

from ..branches.models import Branch, Counter, Service
from ..core.errors import NotFound
from ..extensions import db
from ..tickets import queries
from ..tickets import services as tickets
from ..tickets.models import Ticket

# ids are INTEGER columns: a larger number names nothing (and must not reach the database,
# where PostgreSQL refuses it and SQLite's driver overflows)
MAX_ID = 2**31 - 1
# longer than any code or token column; a value this long names nothing
MAX_KEY_LENGTH = 64


def _plausible_key(value: str) -> bool:
    """Could `value` be a stored code or token? NUL cannot even be sent to PostgreSQL."""
    return 0 < len(value) <= MAX_KEY_LENGTH and "\x00" not in value


def _plausible_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def invalid(field: str, message: str, code: str = "invalid"):
    """422 for a request body that names something that does not exist, with `fields`."""
    abort_with(422, messages={field: [message]}, code=code)


def branch_or_404(code: str) -> Branch:
    branch = None
    if _plausible_key(code):
        branch = db.session.scalar(
            select(Branch).where(Branch.code == code, Branch.active.is_(True))
        )
    if branch is None:
        abort(404, description=f"no branch {code!r}")
    return branch


def service_of(branch: Branch, code: str) -> Service | None:
    if not _plausible_key(code):
        return None
    return db.session.scalar(
        select(Service).where(Service.branch_id == branch.id, Service.code == code)
    )


def service_in_body(branch: Branch, code: str, field: str = "service") -> Service:
    """The branch's service named in a request body; 422 when it has none of that code."""
    service = service_of(branch, code)
    if service is None:
        invalid(field, f"branch {branch.code} has no service {code!r}", "unknown_service")
    return service


def counter_or_404(counter_id: int) -> Counter:
    counter = db.session.get(Counter, counter_id) if _plausible_id(counter_id) else None
    if counter is None:
        abort(404, description=f"no counter {counter_id}")
    return counter


def _locked_or_404(lock, row_id: int, what: str):
    row = None
    if _plausible_id(row_id):
        with contextlib.suppress(NotFound):
            row = lock(row_id)
    if row is None:
        abort(404, description=f"no {what} {row_id}")
    return row


def locked_counter_or_404(counter_id: int) -> Counter:
    """`counter_or_404`, locked for this transaction (`tickets.services.lock_counter`): for an
    action on the counter, which then reads it no more."""
    return _locked_or_404(tickets.lock_counter, counter_id, "counter")


def counter_in_body(counter_id: int, field: str = "counter_id") -> Counter:
    counter = db.session.get(Counter, counter_id) if _plausible_id(counter_id) else None
    if counter is None:
        invalid(field, f"no counter {counter_id}", "unknown_counter")
    return counter


def ticket_or_404(ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id) if _plausible_id(ticket_id) else None
    if ticket is None:
        abort(404, description=f"no ticket {ticket_id}")
    return ticket


def ticket_by_token_or_404(token: str) -> Ticket:
    ticket = queries.ticket_by_token(token) if _plausible_key(token) else None
    if ticket is None:
        abort(404, description="no ticket has this token")
    return ticket


def locked_ticket_or_404(ticket_id: int) -> Ticket:
    """`ticket_or_404`, locked for this transaction (`tickets.services.lock_ticket`): only for
    an action that locks nothing but the ticket, which then reads it no more."""
    return _locked_or_404(tickets.lock_ticket, ticket_id, "ticket")
