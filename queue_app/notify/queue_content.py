"""What a waiting customer reads about the queue: "you are next in N" and "it is your turn".

Like `content.py`: every text in the customer's language (the customer's, else the branch's),
through gettext under `force_locale`; one `QueueMessage` holds the words for every channel
(`short` for SMS and WhatsApp, `subject` and `text` for e-mail). Each carries the tracking
link of the visit (`kiosk/links.py`), the page that shows the place live.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import force_locale
from flask_babel import gettext as _

from ..i18n import pick_locale  # noqa: F401 (re-exported: content.pick_locale)


@dataclass(frozen=True)
class QueueMessage:
    locale: str
    subject: str
    text: str  # the e-mail's body
    short: str  # SMS and WhatsApp


def next_in_line(
    *,
    locale: str,
    number: str,
    place: int,
    branch: str,
    service: str,
    url: str,
    confirm_arrival: bool,
) -> QueueMessage:
    """Sent once when a ticket reaches place N (QUEUE_NEXT_IN_N) of its queue."""
    values = {"number": number, "place": place, "branch": branch, "service": service, "url": url}
    with force_locale(locale):
        subject = _("Ticket %(number)s: you are number %(place)s in line", **values)
        if place == 1:
            lead = _("Ticket %(number)s is next in line for %(service)s at %(branch)s.", **values)
        else:
            lead = _(
                "Ticket %(number)s is number %(place)s in line for %(service)s at %(branch)s.",
                **values,
            )
        if confirm_arrival:
            ask = _(
                'Please come to the branch now and tap "I\'m here" by scanning the QR code '
                "at the entrance, or your ticket will be moved back."
            )
        else:
            ask = _("Please stay close: your number will be called soon.")
        follow = _("Follow your place live: %(url)s", **values)
        text = f"{lead}\n\n{ask}\n\n{follow}\n"
        short = f"{lead} {ask} {url}"
    return QueueMessage(locale=locale, subject=subject, text=text, short=short)


def your_turn(*, locale: str, number: str, counter: str, branch: str, url: str) -> QueueMessage:
    """Sent when a ticket is called, and again at each recall."""
    values = {"number": number, "counter": counter, "branch": branch, "url": url}
    with force_locale(locale):
        subject = _("Ticket %(number)s: it is your turn, go to %(counter)s", **values)
        lead = _("It is your turn: ticket %(number)s, please go to %(counter)s now.", **values)
        where = _("Branch: %(branch)s", **values)
        follow = _("Your ticket: %(url)s", **values)
        text = f"{lead}\n\n{where}\n{follow}\n"
        short = f"{lead} {url}"
    return QueueMessage(locale=locale, subject=subject, text=text, short=short)
