"""The words of a rating invitation, in the customer's language (the customer's, else the
branch's), through gettext under `force_locale` like `notify/queue_content.py`: `short` for SMS
and WhatsApp, `subject` and `text` for e-mail. Each carries the signed link (`links.py`) and
says how long it stays valid."""

from __future__ import annotations

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _

from ..notify.queue_content import QueueMessage, pick_locale

__all__ = ["invitation", "pick_locale"]


def invitation(
    *, locale: str, branch: str, service: str, number: str, url: str, valid_days: int
) -> QueueMessage:
    values = {"branch": branch, "service": service, "number": number, "url": url}
    with force_locale(locale):
        subject = _("How was your visit to %(branch)s?", **values)
        lead = _(
            "Thank you for visiting %(branch)s today (ticket %(number)s, %(service)s).", **values
        )
        ask = _("Would you tell us how it went? It takes less than a minute.")
        link = _("Rate your visit: %(url)s", **values)
        valid = ngettext(
            "This link is valid for %(num)d day.",
            "This link is valid for %(num)d days.",
            valid_days,
        )
        text = f"{lead}\n\n{ask}\n\n{link}\n\n{valid}\n"
        short = f"{lead} {ask} {url}"
    return QueueMessage(locale=locale, subject=subject, text=text, short=short)
