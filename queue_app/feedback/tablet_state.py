"""What a feedback tablet shows, and the signed token it rates with.

A feedback tablet is a paired device (`DeviceKind.FEEDBACK`) standing at one counter
(`Device.counter_id`). When that counter finishes a served ticket, the tablet shows the survey
of that visit step: the realtime layer pushes it to the tablet's room right after the commit
(`realtime/payloads.py`, built here from the committed rows), and the tablet also polls its
state (`tablet_state`), because events are hints and the database is the truth.

The state is the counter's latest visit step that left it (`Ticket.finished_at`, any way) within
`FEEDBACK_TABLET_WINDOW_S` on today's business day: a survey when that step finished served and
has no response yet, nothing otherwise (a no-show or a transfer after it means its customer
has gone; yesterday's steps closed by the night job are not today's).

The survey carries a rating token: `itsdangerous.URLSafeTimedSerializer` with the app's
`SECRET_KEY` and its own salt, naming the ticket and the counter, valid for
`FEEDBACK_TABLET_TOKEN_S`. Only a tablet of that same counter rates with it
(`ticket_for_rating`). A tablet asks at most `MAX_STEPS` questions (`tablet_steps`).

Nothing here writes: the rating itself is `feedback.services.record_response`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..branches.models import Branch, Counter
from ..core.errors import NotAllowed, NotFound
from ..devices.models import Device
from ..extensions import db
from ..tickets.models import Ticket, TicketStatus, Visit
from .models import SurveyConfig
from .questions import REASONS, survey_for
from .services import asked, existing_response

SALT = "queue_app.feedback.tablet"
DEFAULT_TOKEN_S = 300  # how long a survey's rating token is good for
DEFAULT_WINDOW_S = 180  # how long after the finish the tablet still offers the survey
MAX_STEPS = 3  # questions on a tablet: the customer is standing up to leave
MAX_TOKEN_LENGTH = 400


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def token_max_age() -> int:
    return int(current_app.config.get("FEEDBACK_TABLET_TOKEN_S", DEFAULT_TOKEN_S))


def window() -> timedelta:
    seconds = current_app.config.get("FEEDBACK_TABLET_WINDOW_S", DEFAULT_WINDOW_S)
    return timedelta(seconds=int(seconds))


def rating_token(ticket: Ticket) -> str:
    return _serializer().dumps({"t": ticket.id, "c": ticket.counter_id})


def _expired() -> NotFound:
    return NotFound("this survey is no longer open", "survey_expired")


def ticket_for_rating(token, device: Device) -> Ticket:
    """The ticket a tablet's rating is for.

    `survey_expired` (404) for a token that is missing, altered or older than
    `FEEDBACK_TABLET_TOKEN_S`; `not_this_tablet` (403) when the token is of a visit step
    of another counter than the one this tablet stands at (another branch's included)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise _expired()
    try:
        data = _serializer().loads(token, max_age=token_max_age())
        ticket_id, counter_id = int(data["t"]), int(data["c"])
    except (BadSignature, KeyError, TypeError, ValueError):  # SignatureExpired included
        raise _expired() from None
    if device.counter_id is None or counter_id != device.counter_id:
        raise NotAllowed("this survey belongs to another counter's tablet", "not_this_tablet")
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        raise _expired()
    if ticket.counter_id != device.counter_id or ticket.branch_id != device.branch_id:
        raise NotAllowed("this survey belongs to another counter's tablet", "not_this_tablet")
    return ticket


def tablet_steps(survey: SurveyConfig) -> list[str]:
    """What the tablet asks, at most `MAX_STEPS`: the scored questions in the order NPS, CSAT,
    CES; then, only if there is room, the reasons (one optional multi-select step); then, if
    there is still room and the survey asks for one, the comment (the only keyboard)."""
    steps = asked(survey)[:MAX_STEPS]
    if len(steps) < MAX_STEPS and [r for r in survey.reasons or () if r in REASONS]:
        steps.append("reasons")
    if len(steps) < MAX_STEPS and survey.ask_comment:
        steps.append("comment")
    return steps


def _languages() -> list[str]:
    return list(current_app.config["LANGUAGES"])


def survey_language(ticket: Ticket) -> str:
    """The customer's language (their recorded locale), else the branch's, else the default."""
    languages = _languages()
    customer = ticket.visit.customer if ticket.visit is not None else None
    for candidate in (customer.locale if customer else None, ticket.branch.locale):
        if candidate in languages:
            return candidate
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def survey_view(ticket: Ticket) -> dict | None:
    """The survey the tablet shows for `ticket`, or None (rated already, not served, or the
    touchpoint asks nothing). Public data only: no ticket id, no customer's name."""
    if ticket.status != TicketStatus.FINISHED or existing_response(ticket.id) is not None:
        return None
    survey = survey_for(ticket.branch_id, ticket.service_id)
    steps = tablet_steps(survey)
    if not steps:
        return None
    service = ticket.service
    return {
        # tells one survey from the next on the tablet (never the same for two steps)
        "key": f"{ticket.number}@{ticket.finished_at.isoformat()}",
        "token": rating_token(ticket),
        "number": ticket.number,
        "service": {"name": service.name, "names": dict(service.names or {})},
        "lang": survey_language(ticket),
        "steps": steps,
        "reasons": [r for r in survey.reasons or () if r in REASONS] if "reasons" in steps else [],
        "expires_in_s": token_max_age(),
    }


def latest_left(counter_id: int, branch: Branch, now: datetime) -> Ticket | None:
    """The counter's visit step that left it last, within the window, today (or None)."""
    return db.session.scalar(
        select(Ticket)
        .options(
            joinedload(Ticket.service),
            joinedload(Ticket.branch),
            joinedload(Ticket.visit).joinedload(Visit.customer),
        )
        .where(
            Ticket.branch_id == branch.id,
            Ticket.counter_id == counter_id,
            Ticket.finished_at.is_not(None),
            Ticket.finished_at >= now - window(),
            Ticket.business_day == branch.business_day(now),
        )
        .order_by(Ticket.finished_at.desc(), Ticket.id.desc())
        .limit(1)
    )


def tablet_state(device: Device, now: datetime) -> dict:
    """The tablet's whole state: where it stands, and the survey to show (or None)."""
    branch = device.branch
    counter = db.session.get(Counter, device.counter_id) if device.counter_id else None
    if counter is not None and counter.branch_id != branch.id:
        counter = None
    ticket = latest_left(counter.id, branch, now) if counter is not None else None
    return {
        "branch": {"code": branch.code, "name": branch.name, "locale": branch.locale},
        "counter": {"id": counter.id, "name": counter.name} if counter is not None else None,
        "survey": survey_view(ticket) if ticket is not None else None,
    }


def finished_survey(ticket: Ticket | None, counter_id: int | None) -> dict | None:
    """The survey pushed to the tablets of `counter_id` for a committed `finish` entry."""
    if ticket is None or counter_id is None or ticket.counter_id != counter_id:
        return None
    return survey_view(ticket)


def room(branch_id: int, counter_id: int) -> str:
    """The Socket.IO room of the feedback tablets standing at a counter."""
    return f"feedback:{branch_id}:{counter_id}"
