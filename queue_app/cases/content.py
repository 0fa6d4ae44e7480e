"""What the case e-mails say: to a case's new owner, to the executives at the last level, and
the recovery survey to the customer. Each in its reader's language (gettext under
`force_locale`), times in the branch's own time zone; plain text (the facts and a link)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _

from ..extensions import db
from ..feedback.models import FeedbackResponse
from ..i18n import pick_locale  # noqa: F401 (re-exported: content.pick_locale)
from .links import case_url
from .models import Case


@dataclass
class Message:
    locale: str
    subject: str
    body: str
    short: str


def local_time(case: Case, moment: datetime | None, locale: str) -> str:
    if moment is None:
        return "—"
    return format_datetime(moment, "medium", tzinfo=case.branch.tz, locale=locale)


def _facts(case: Case, locale: str) -> list[str]:
    response = db.session.get(FeedbackResponse, case.response_id)
    lines = [
        _("Branch: %(branch)s", branch=f"{case.branch.code} · {case.branch.name}"),
        _("Service: %(service)s", service=case.service.display_name(locale)),
        _("Opened: %(when)s", when=local_time(case, case.opened_at, locale)),
        _("Why: %(triggers)s", triggers=", ".join(case.triggers or ()) or "—"),
    ]
    if response is not None and response.comment:
        lines.append(_("Comment: %(comment)s", comment=response.comment))
    return lines


def for_owner(case: Case, *, locale: str, escalated: bool) -> Message:
    """The case is now yours: opened (level 1) or escalated to you."""
    with force_locale(locale):
        if escalated:
            subject = _("Case %(id)s escalated to level %(level)s", id=case.id, level=case.level)
            intro = _(
                "Nobody has contacted this customer in time. The case is now yours, at level "
                "%(level)s.",
                level=case.level,
            )
        else:
            subject = _("New case %(id)s: an unhappy customer", id=case.id)
            intro = _("A customer's feedback opened a case that you own.")
        due = (
            _("Contact the customer before %(when)s.", when=local_time(case, case.due_at, locale))
            if case.due_at
            else _("This is the last level of the escalation ladder.")
        )
        lines = [
            intro,
            "",
            *_facts(case, locale),
            "",
            due,
            _("Open the case: %(url)s", url=case_url(case)),
        ]
        return Message(locale, subject, "\n".join(lines), subject)


def for_executive(case: Case, *, locale: str) -> Message:
    """A case reached the last level: the executives are informed."""
    with force_locale(locale):
        subject = _(
            "Case %(id)s reached level %(level)s: customer not contacted",
            id=case.id,
            level=case.level,
        )
        intro = _(
            "This unhappy customer has not been contacted through every level of the "
            "escalation ladder. You are informed as a member of the executive list."
        )
        lines = [
            intro,
            "",
            *_facts(case, locale),
            "",
            _("Open the case: %(url)s", url=case_url(case)),
        ]
        return Message(locale, subject, "\n".join(lines), subject)


def recovery(case: Case, *, locale: str, url: str, name: str | None) -> Message:
    """The customer's short survey after the case was resolved."""
    with force_locale(locale):
        subject = _("How do you feel about %(branch)s now?", branch=case.branch.name)
        greeting = _("Hello %(name)s,", name=name) if name else _("Hello,")
        text = _(
            "After your visit to %(branch)s we followed up on your feedback. One question: how "
            "likely are you now to recommend us to a friend or colleague (0-10)?",
            branch=case.branch.name,
        )
        body = "\n".join([greeting, "", text, "", url, "", _("Thank you.")])
        short = _(
            "%(branch)s: how likely are you now to recommend us (0-10)? %(url)s",
            branch=case.branch.name,
            url=url,
        )
        return Message(locale, subject, body, short)
