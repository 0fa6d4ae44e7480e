"""What the customer reads about an appointment: the confirmation, the reminders, and the
notices of a change (reschedule) or a cancellation.

Every text is written in the customer's language (the booking's locale, else the customer's,
else the branch's), through gettext under `force_locale`, with the date and time in the
branch's own time zone. The confirmation and the change notice carry the booking's manage
link (`booking/links.py`: change or cancel it). The e-mail bodies are laid out by the templates in
`templates/notify/`; the words come from here, so the text and HTML parts say the same.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from datetime import datetime

import qrcode
import qrcode.image.pure
from babel.dates import format_date, format_time, get_timezone_name
from flask import current_app, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from icalendar import Calendar, Event

from ..booking.links import manage_url
from ..booking.models import Appointment

QR_CONTENT_ID = "booking-qr@queue-app"
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


@dataclass
class Content:
    """One message in one language, for every channel."""

    locale: str
    subject: str
    text: str  # the e-mail's text part
    html: str
    short: str  # SMS and WhatsApp
    attachments: list[dict] = field(default_factory=list)


def locale_for(appointment: Appointment) -> str:
    languages = tuple(current_app.config["LANGUAGES"])
    customer = appointment.customer
    for candidate in (
        appointment.locale,
        customer.locale if customer is not None else None,
        appointment.branch.locale,
    ):
        if candidate in languages:
            return candidate
        if candidate and candidate.split("-")[0].split("_")[0] in languages:
            return candidate.split("-")[0].split("_")[0]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def local_when(moment: datetime, timezone, locale: str) -> dict:
    """The date and time of `moment` in `timezone` as the customer reads them.

    Indonesian zones read with their usual abbreviation (09.00 WIB, 11:00 AM WIT); others,
    which have none in the language, with their name ("Philippine Standard Time")."""
    local = moment.astimezone(timezone)
    zone = get_timezone_name(local, "short", locale=locale)
    if zone[:1] in "+-" or zone.startswith("GMT"):
        zone = get_timezone_name(local, "long", locale=locale)
    return {
        "date": format_date(local, "full", locale=locale).translate(_PLAIN_SPACES),
        "short_date": format_date(local, "medium", locale=locale).translate(_PLAIN_SPACES),
        # CLDR puts a narrow no-break space in "9:00 AM": outside the GSM alphabet, it would
        # make every SMS a UCS-2 one (70 characters instead of 160)
        "time": f"{format_time(local, 'short', locale=locale)} {zone}".translate(_PLAIN_SPACES),
    }


def qr_png(data: str, *, box_size: int = 8) -> bytes:
    """`data` as a PNG QR code (error correction M, quiet zone of 4 modules): the same code as
    the kiosk's SVG (`kiosk/qr.py`), as an image every mail client shows."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=4,
        box_size=box_size,
        image_factory=qrcode.image.pure.PyPNGImage,
    )
    code.add_data(data)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()


def calendar_file(appointment: Appointment, *, summary: str, description: str, now) -> bytes:
    """An iCalendar (RFC 5545) event: start and end in UTC, UID from the booking code, the
    number of changes as its SEQUENCE."""
    calendar = Calendar()
    calendar.add("prodid", "-//queue_app//appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    host = (current_app.config.get("PUBLIC_BASE_URL") or "queue-app").split("//")[-1]
    event.add("uid", f"{appointment.code}@{host.split('/')[0].split(':')[0]}")
    event.add("dtstamp", now)
    # a rescheduled booking keeps its UID: the higher sequence makes calendars update it
    event.add("sequence", appointment.changes or 0)
    event.add("dtstart", appointment.start)
    event.add("dtend", appointment.end)
    event.add("summary", summary)
    event.add("description", description)
    branch = appointment.branch
    event.add("location", ", ".join(p for p in (branch.name, branch.address, branch.city) if p))
    calendar.add_component(event)
    return calendar.to_ical()


def _attachment(filename: str, content_type: str, data: bytes, content_id=None) -> dict:
    item = {
        "filename": filename,
        "content_type": content_type,
        "data_b64": base64.b64encode(data).decode("ascii"),
    }
    if content_id:
        item["content_id"] = content_id
    return item


def _qr_attachment(code: str) -> dict:
    return _attachment(f"{code}.png", "image/png", qr_png(code), QR_CONTENT_ID)


def _details(appointment: Appointment, locale: str) -> tuple[dict, list[tuple[str, str]]]:
    branch = appointment.branch
    when = local_when(appointment.start, branch.tz, locale)
    facts = {
        "branch": branch.name,
        "service": appointment.service.display_name(locale),
        "code": appointment.code,
        **when,
    }
    rows = [(_("Branch"), branch.name)]
    address = ", ".join(p for p in (branch.address, branch.city) if p)
    if address:
        rows.append((_("Address"), address))
    rows += [
        (_("Service"), facts["service"]),
        (_("Date"), when["date"]),
        (_("Time"), when["time"]),
        (_("Booking code"), appointment.code),
    ]
    return facts, rows


def _render(locale, *, subject, heading, greeting, intro, rows, notes, code, qr_alt) -> tuple:
    context = {
        "locale": locale,
        "subject": subject,
        "heading": heading,
        "greeting": greeting,
        "intro": intro,
        "rows": rows,
        "notes": notes,
        "code": code,
        "qr_cid": QR_CONTENT_ID,
        "qr_alt": qr_alt,
        "footer": _("This message was sent automatically; please do not reply."),
    }
    return render_template("notify/email.txt", **context), render_template(
        "notify/email.html", **context
    )


def _greeting(appointment: Appointment) -> str:
    name = appointment.name or (appointment.customer.name if appointment.customer else None)
    return _("Hello %(name)s,", name=name) if name else _("Hello,")


def _manage_note(appointment: Appointment) -> str:
    return _("To change or cancel this booking, open: %(url)s", url=manage_url(appointment))


def _summary(facts: dict) -> str:
    return _("%(service)s at %(branch)s", **facts)


def calendar_for(appointment: Appointment, *, now: datetime) -> bytes:
    """The booking's calendar file in the customer's language (the confirmation's
    attachment, and the .ics download of the booking pages)."""
    locale = locale_for(appointment)
    with force_locale(locale):
        facts, _rows = _details(appointment, locale)
        return calendar_file(
            appointment,
            summary=_summary(facts),
            description=_("Booking code: %(code)s", code=appointment.code),
            now=now,
        )


def confirmation(appointment: Appointment, *, now: datetime) -> Content:
    """The booking confirmation: e-mail with the QR code and a calendar file, and the SMS."""
    locale = locale_for(appointment)
    with force_locale(locale):
        facts, rows = _details(appointment, locale)
        subject = _("Your appointment at %(branch)s: %(date)s, %(time)s", **facts)
        text, html = _render(
            locale,
            subject=subject,
            heading=_("Your appointment is booked"),
            greeting=_greeting(appointment),
            intro=_("Thank you for booking. Here are the details of your visit:"),
            rows=rows,
            notes=[
                _("When you arrive, scan the QR code or type the booking code at the kiosk."),
                _("The attached calendar file adds the visit to your calendar."),
                _manage_note(appointment),
            ],
            code=appointment.code,
            qr_alt=_("QR code of booking code %(code)s", code=appointment.code),
        )
        # TRANSLATORS: an SMS: short, and plain letters only (no typographic quotes or dashes)
        short = _(
            "%(branch)s: your appointment for %(service)s is on %(short_date)s at %(time)s. "
            "Booking code: %(code)s.",
            **facts,
        )
        # TRANSLATORS: an SMS, after the confirmation: the link to change or cancel
        short += " " + _("Change or cancel: %(url)s", url=manage_url(appointment))
    ics = calendar_for(appointment, now=now)
    attachments = [
        _attachment(
            f"{appointment.code}.png", "image/png", qr_png(appointment.code), QR_CONTENT_ID
        ),
        _attachment(f"{appointment.code}.ics", "text/calendar", ics),
    ]
    return Content(locale, subject, text, html, short, attachments)


def rescheduled(appointment: Appointment, *, previous_start: datetime, now: datetime) -> Content:
    """The notice of a booking moved to another slot: the new time (and the old one), the QR
    code and a calendar file for the new time (same UID: calendars update the event)."""
    locale = locale_for(appointment)
    with force_locale(locale):
        facts, rows = _details(appointment, locale)
        before = local_when(previous_start, appointment.branch.tz, locale)
        subject = _("Your appointment at %(branch)s is moved to %(date)s, %(time)s", **facts)
        text, html = _render(
            locale,
            subject=subject,
            heading=_("Your appointment is changed"),
            greeting=_greeting(appointment),
            intro=_(
                "Your appointment of %(old_date)s, %(old_time)s is moved. "
                "Here are the new details of your visit:",
                old_date=before["date"],
                old_time=before["time"],
            ),
            rows=rows,
            notes=[
                _("Your booking code stays the same."),
                _("The attached calendar file adds the visit to your calendar."),
                _manage_note(appointment),
            ],
            code=appointment.code,
            qr_alt=_("QR code of booking code %(code)s", code=appointment.code),
        )
        # TRANSLATORS: an SMS: short, and plain letters only (no typographic quotes or dashes)
        short = _(
            "%(branch)s: your appointment for %(service)s is moved to %(short_date)s at "
            "%(time)s. Booking code: %(code)s.",
            **facts,
        )
        short += " " + _("Change or cancel: %(url)s", url=manage_url(appointment))
    attachments = [
        _qr_attachment(appointment.code),
        _attachment(f"{appointment.code}.ics", "text/calendar", calendar_for(appointment, now=now)),
    ]
    return Content(locale, subject, text, html, short, attachments)


def cancellation(appointment: Appointment) -> Content:
    """The notice of a cancelled booking (e-mail and SMS)."""
    locale = locale_for(appointment)
    with force_locale(locale):
        facts, rows = _details(appointment, locale)
        subject = _("Your appointment at %(branch)s on %(date)s is cancelled", **facts)
        text, html = _render(
            locale,
            subject=subject,
            heading=_("Your appointment is cancelled"),
            greeting=_greeting(appointment),
            intro=_("This appointment is cancelled:"),
            rows=rows,
            notes=[
                _("The booking code can no longer be used."),
                _("You are welcome to book another visit at any time."),
            ],
            code=appointment.code,
            qr_alt=_("QR code of booking code %(code)s", code=appointment.code),
        )
        # TRANSLATORS: an SMS: short, and plain letters only (no typographic quotes or dashes)
        short = _(
            "%(branch)s: your appointment for %(service)s on %(short_date)s at %(time)s "
            "(booking code %(code)s) is cancelled.",
            **facts,
        )
    # the e-mail layout shows the code's image: kept, so no broken image is shown
    return Content(locale, subject, text, html, short, [_qr_attachment(appointment.code)])


def reminder(appointment: Appointment) -> Content:
    """A reminder before the visit: e-mail (with the QR code) and SMS."""
    locale = locale_for(appointment)
    with force_locale(locale):
        facts, rows = _details(appointment, locale)
        subject = _("Reminder: your appointment at %(branch)s, %(date)s, %(time)s", **facts)
        text, html = _render(
            locale,
            subject=subject,
            heading=_("Reminder of your appointment"),
            greeting=_greeting(appointment),
            intro=_("This is a reminder of your visit:"),
            rows=rows,
            notes=[
                _("When you arrive, scan the QR code or type the booking code at the kiosk."),
            ],
            code=appointment.code,
            qr_alt=_("QR code of booking code %(code)s", code=appointment.code),
        )
        # TRANSLATORS: an SMS: short, and plain letters only (no typographic quotes or dashes)
        short = _(
            "Reminder from %(branch)s: your appointment for %(service)s is on %(short_date)s "
            "at %(time)s. Booking code: %(code)s.",
            **facts,
        )
    attachments = [_qr_attachment(appointment.code)]
    return Content(locale, subject, text, html, short, attachments)
