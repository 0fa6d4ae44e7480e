"""The signed link of a rating invitation (e-mail or SMS after the visit).

An `itsdangerous.URLSafeTimedSerializer` token signed with the app's `SECRET_KEY` and its own
salt (`queue_app.feedback.link`, like `booking/links.py`): its payload is the id of the visit
step (ticket) it rates, so it names exactly one step and cannot be made up or moved to
another. It is valid for the touchpoint survey's `link_valid_days`, counted from when it was
signed (the invitation); after that the page says the link has expired.

The link itself does not stop a second rating: `FeedbackResponse.ticket_id` is unique, so a
step rated at the tablet or by QR before the message goes out answers "already rated" and
records nothing (the outbox stays generic: it never asks whether a message is still wanted).
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..core.errors import NotFound
from ..extensions import db
from ..tickets.models import Ticket
from .questions import survey_for

SALT = "queue_app.feedback.link"
DAY_S = 24 * 3600


class LinkExpired(NotFound):
    """A genuine link, too old: the page says so in its own words."""

    status = 410
    code = "link_expired"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def link_token(ticket: Ticket, *, now: datetime | None = None) -> str:
    """The signed token for rating `ticket` (signed at `now`, default: the real clock)."""
    serializer = _serializer()
    if now is None:
        return serializer.dumps(ticket.id)
    # itsdangerous stamps with the real clock; an invitation written with an explicit `now`
    # (a job, a test) signs with that time
    signer = serializer.make_signer(SALT)
    payload = serializer.dump_payload(ticket.id)
    timestamp = signer.get_timestamp
    try:
        signer.get_timestamp = lambda: int(now.timestamp())
        return signer.sign(payload).decode()
    finally:
        signer.get_timestamp = timestamp


def ticket_of(token: str, *, now: datetime) -> Ticket:
    """The step a link rates. `invalid_link` (404) if forged or altered, `link_expired` (410)
    when older than the survey's `link_valid_days` at `now`."""
    try:
        ticket_id, signed_at = _serializer().loads(token, return_timestamp=True)
    except (BadSignature, TypeError, ValueError):
        raise NotFound("this link is not valid", "invalid_link") from None
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id < 1:
        raise NotFound("this link is not valid", "invalid_link")
    ticket = db.session.get(Ticket, ticket_id) if ticket_id <= 2**31 - 1 else None
    if ticket is None:
        raise NotFound("this link is not valid", "invalid_link")
    valid_s = survey_for(ticket.branch_id, ticket.service_id).link_valid_days * DAY_S
    if (now - signed_at).total_seconds() > valid_s:
        raise LinkExpired("this link has expired")
    return ticket


def link_path(token: str) -> str:
    return f"/r/{token}"


def rating_url(ticket: Ticket, *, now: datetime | None = None) -> str:
    """The absolute link for messages: `PUBLIC_BASE_URL/r/<token>` (a plain path, not
    url_for: invitations are written inside jobs and other units of work)."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}{link_path(link_token(ticket, now=now))}"


__all__ = ["SALT", "LinkExpired", "link_token", "rating_url", "ticket_of"]
