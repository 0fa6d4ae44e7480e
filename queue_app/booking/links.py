"""Signed links of a booking: the customer's manage link and the hold of the booking form.

Both are `itsdangerous.URLSafeTimedSerializer` tokens signed with the app's `SECRET_KEY`,
each with its own salt, so neither can be made from the other or from the booking code (the
code is short, typed at a kiosk, and may be read over a shoulder; the manage link is what
changes or cancels the booking).

- The manage token names the appointment (its id and code) and is valid for
  `BOOKING_LINK_MAX_AGE_S` (90 days by default): it goes into the confirmation, the change
  and cancellation messages (`notify/content.py`) and the confirmation page. It survives a
  reschedule (the code is kept), so an older message's link still opens the booking.
- The hold token names a held place while its form is filled in; the hold's own expiry is
  what counts (`services.confirm`), the token's age is only a bound (one hour).

`manage_url` builds the absolute link for messages from `PUBLIC_BASE_URL`, like
`kiosk/links.py` does for tickets.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from ..core.errors import NotFound
from ..extensions import db
from .models import Appointment

MANAGE_SALT = "booking.manage"
HOLD_SALT = "booking.hold"
HOLD_TOKEN_MAX_AGE_S = 3600
DEFAULT_LINK_MAX_AGE_S = 90 * 24 * 3600


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _load(token: str, salt: str, max_age: int) -> Appointment:
    try:
        data = _serializer(salt).loads(token, max_age=max_age)
        appointment_id, code = int(data["a"]), str(data["c"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("this link is not valid or has expired", "invalid_link") from None
    appointment = db.session.scalar(
        select(Appointment).where(Appointment.id == appointment_id, Appointment.code == code)
    )
    if appointment is None:
        raise NotFound("this link is not valid or has expired", "invalid_link")
    return appointment


def manage_token(appointment: Appointment) -> str:
    return _serializer(MANAGE_SALT).dumps({"a": appointment.id, "c": appointment.code})


def by_manage_token(token: str) -> Appointment:
    """The appointment of a manage link; `invalid_link` (404) if forged, altered or too old."""
    max_age = int(current_app.config.get("BOOKING_LINK_MAX_AGE_S", DEFAULT_LINK_MAX_AGE_S))
    return _load(token, MANAGE_SALT, max_age)


def hold_token(appointment: Appointment) -> str:
    return _serializer(HOLD_SALT).dumps({"a": appointment.id, "c": appointment.code})


def by_hold_token(token: str) -> Appointment:
    return _load(token, HOLD_SALT, HOLD_TOKEN_MAX_AGE_S)


def manage_url(appointment: Appointment) -> str:
    """The absolute manage link for messages: `PUBLIC_BASE_URL/appointments/<token>`."""
    # a plain path, not url_for: the outbox is also written by jobs, outside any request
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}/appointments/{manage_token(appointment)}"
