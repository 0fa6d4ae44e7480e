"""What alerts say: the one-line message the dashboard shows and the managers' e-mails, in the
reader's language (gettext under `force_locale`), times in the branch's own time zone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _

from ..i18n import pick_locale  # noqa: F401 (re-exported: content.pick_locale)
from .models import Alert, Metric


@dataclass
class Message:
    locale: str
    subject: str
    body: str


def duration(seconds: float | None) -> str:
    """ "18 min", "45 s" (call under `force_locale`)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return _("%(seconds)s s", seconds=int(seconds))
    return _("%(minutes)s min", minutes=int(seconds // 60))


def amount(metric: Metric, value: float | None) -> str:
    """A metric's value as people read it (call under `force_locale`)."""
    if value is None:
        return "—"
    if metric == Metric.QUEUE_LENGTH:
        return str(int(value))
    if metric == Metric.NO_SHOW_RATE:
        return f"{math.floor(value * 100 + 0.5)}%"
    return duration(value)


def where(alert: Alert, locale: str) -> str:
    if alert.service is not None:
        return alert.service.display_name(locale)
    return alert.branch.name


def sentence(alert: Alert, locale: str, value: float | None = None) -> str:
    """E.g. "Longest wait at Teller is 18 min (threshold 15 min)", for `value` (default: the
    current value, or the value it was raised with when nothing is known now)."""
    if value is None:
        value = alert.current_value if alert.current_value is not None else alert.value_raised
    with force_locale(locale):
        args = {
            "where": where(alert, locale),
            "value": amount(alert.metric, value),
            "threshold": amount(alert.metric, alert.threshold),
        }
        if alert.metric == Metric.LONGEST_WAIT_S:
            return _("Longest wait at %(where)s is %(value)s (threshold %(threshold)s)", **args)
        if alert.metric == Metric.QUEUE_LENGTH:
            return _("%(value)s customers waiting at %(where)s (threshold %(threshold)s)", **args)
        if alert.metric == Metric.EWT_S:
            return _(
                "Estimated wait for a new ticket at %(where)s is %(value)s "
                "(threshold %(threshold)s)",
                **args,
            )
        if alert.metric == Metric.IDLE_COUNTER_S:
            counter = alert.counter.name if alert.counter is not None else "—"
            return _(
                "%(counter)s has been idle for %(value)s while customers wait "
                "(threshold %(threshold)s)",
                counter=counter,
                value=args["value"],
                threshold=args["threshold"],
            )
        return _("No-show rate at %(where)s is %(value)s (threshold %(threshold)s)", **args)


def local_time(alert: Alert, moment: datetime | None, locale: str) -> str:
    if moment is None:
        return "—"
    return format_datetime(moment, "medium", tzinfo=alert.branch.tz, locale=locale)


def for_owner(alert: Alert, *, locale: str, escalated: bool) -> Message:
    """The alert is yours: raised at your branch, or escalated to you."""
    with force_locale(locale):
        text = sentence(alert, locale)
        if escalated:
            subject = _(
                "Alert at %(branch)s escalated to you (level %(level)s): %(text)s",
                branch=alert.branch.code,
                level=alert.level,
                text=text,
            )
            intro = _(
                "Nobody acknowledged this alert in time. It is now yours, at level %(level)s.",
                level=alert.level,
            )
        else:
            subject = _("Alert at %(branch)s: %(text)s", branch=alert.branch.code, text=text)
            intro = _("A threshold of your branch was crossed.")
        lines = [
            intro,
            "",
            text,
            _("Branch: %(branch)s", branch=f"{alert.branch.code} · {alert.branch.name}"),
            _("Raised: %(when)s", when=local_time(alert, alert.raised_at, locale)),
        ]
        if alert.ack_due_at is not None:
            lines.append(
                _(
                    "Acknowledge it before %(when)s, or it goes to the next manager.",
                    when=local_time(alert, alert.ack_due_at, locale),
                )
            )
        return Message(locale, subject, "\n".join(lines))
