"""The booking pages on a customer's phone: thin views over `booking.services`.

Booking, from a branch's page (`/b/<code>`):

1. `/b/<code>/book`: choose a service (those that can be booked at the branch);
2. `/b/<code>/book/<service>?date=`: a strip of the next days (closed days with why) and the
   day's free times, in the branch's time zone; choosing one POSTs to the same URL, which
   holds the place (`services.hold`) and sends the form;
3. `/b/<code>/book/<service>/details/<hold token>`: name, phone number and/or e-mail, consent,
   with the hold's countdown; sending it confirms (`services.confirm_booking`);
4. `/appointments/<manage token>/booked`: the confirmation (code, QR code, calendar file,
   manage link).

The confirmation and the manage page remember the appointment in the browser's session
(`mobile.common.remember_appointment`): the entrance poster's "I'm here" scan then offers to
check it in on the phone (`mobile/arrival.py`). On the day, both pages say how to check in and
when (the window in the branch's time).

Changing it, through the signed manage link (`booking/links.py`) that the confirmation page,
e-mail and SMS carry: `/appointments/<token>` shows the booking; `.../reschedule` picks
another time of the same service; `.../cancel` asks once more, then cancels;
`.../calendar.ics` is the calendar file.

Every form is a plain POST with its CSRF token answered by a redirect (POST/redirect/GET); a
domain error shows the page again with what happened, in the customer's language.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from babel.dates import format_date, format_time
from flask import Blueprint, current_app, make_response, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from jinja2 import TemplateNotFound

from ..branches.models import LateArrival
from ..core.errors import DomainError, NotFound
from ..core.types import utcnow
from ..extensions import db, limiter
from ..kiosk.qr import qr_svg
from ..mobile.arrival import check_in_times
from ..mobile.common import (
    current_lang,
    find_branch,
    page,
    remember_appointment,
    speak_branch_language,
)
from ..notify.content import calendar_for, local_when
from . import checkin, links
from . import services as booking
from .models import AppointmentStatus

bp = Blueprint("booking_pages", __name__)

STRIP_DAYS = 14
MAX_NAME = 120
MAX_EMAIL = 255
MAX_PHONE = 32

MESSAGES = {
    "unknown_branch": _l("This branch does not exist or takes no bookings."),
    "unknown_service": _l("This service cannot be booked at this branch."),
    "slot_full": _l("Sorry, this time was just taken by someone else. Please choose another."),
    "hold_expired": _l(
        "The time you chose was kept for you for a few minutes only, and that time is over. "
        "Please choose a time again."
    ),
    "not_held": _l(
        "The time you chose was kept for you for a few minutes only, and that time is over. "
        "Please choose a time again."
    ),
    "slot_passed": _l("This time has already passed. Please choose another."),
    "not_a_slot": _l("That is not one of the times offered. Please choose again."),
    "closed": _l("The branch takes no bookings on that day. Please choose another day."),
    "invalid_phone": _l("That is not a valid phone number. Please check it and try again."),
    "invalid_link": _l("This link is not valid or has expired."),
    "booking_not_active": _l(
        "This booking can no longer be changed: it was cancelled, checked in, or its time "
        "has passed."
    ),
    "booking_started": _l("This appointment has already started and can no longer be changed."),
    "same_slot": _l("Your appointment is already at this time. Please choose another."),
}
FALLBACK = _l("Something went wrong. Please try again.")


def _hold_limit() -> str:
    """Holds per network address (a flood of holds would keep every time from everyone):
    `BOOKING_HOLD_RATE_LIMIT`, else the booking code's limit."""
    config = current_app.config
    return config.get("BOOKING_HOLD_RATE_LIMIT") or config["BOOKING_CODE_RATE_LIMIT"]


def _manage_limit() -> str:
    """Changes through a manage link per network address, as the API's (by booking code)."""
    return current_app.config["BOOKING_CODE_RATE_LIMIT"]


def _message(code: str | None) -> str:
    return str(MESSAGES.get(code or "", FALLBACK))


def _too_many(_limit):
    """Past the booking limit: the page in the branch's language, with why (429)."""
    from ..mobile.messages import RATE_LIMITED

    speak_branch_language(find_branch((request.view_args or {}).get("code", "")))
    return page("booking/message.html", 429, message=str(RATE_LIMITED), code="too_many")


def _error_page(code: str, status: int, *, branch=None):
    return page("booking/message.html", status, message=_message(code), code=code, branch=branch)


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    db.session.rollback()
    return _error_page(error.code, error.status)


# --- what the pages show ---------------------------------------------------------------------


def _branch_or_404(code: str):
    branch = find_branch(code)
    speak_branch_language(branch)
    if branch is None:
        raise NotFound("no such branch", "unknown_branch")
    return branch


def _service_or_404(branch, code: str):
    service = next((s for s in booking.bookable_services(branch) if s.code == code), None)
    if service is None:
        raise NotFound("no such bookable service", "unknown_service")
    return service


def _when(appointment, lang: str) -> dict:
    return local_when(appointment.start, appointment.branch.tz, lang)


def _day_strip(branch, service, today: date, chosen: date, now: datetime, lang: str) -> list:
    days = []
    for offset in range(STRIP_DAYS):
        day = today + timedelta(days=offset)
        reason = booking.closed_reason(branch, day)
        if reason is None and not branch.hours_on(day):
            reason = str(_l("Closed"))
        free = 0
        if reason is None:
            free = sum(s.available for s in booking.day_slots(branch, service, day, now=now))
        days.append(
            {
                "date": day,
                "iso": day.isoformat(),
                "weekday": format_date(day, "EEE", locale=lang),
                "number": format_date(day, "d", locale=lang),
                "month": format_date(day, "MMM", locale=lang),
                "closed": reason,
                "free": free,
                "chosen": day == chosen,
            }
        )
    return days


def _chosen_day(raw: str | None, today: date) -> date | None:
    """The day of `?date=` if it is in the strip, else None."""
    try:
        day = date.fromisoformat(raw or "")
    except ValueError:
        return None
    return day if today <= day < today + timedelta(days=STRIP_DAYS) else None


def _slots_context(branch, service, raw_day: str | None, now: datetime, *, exclude=None):
    """The date strip and the chosen day's times (`exclude`: the start the booking being
    rescheduled already has)."""
    lang = current_lang()
    today = branch.business_day(now)
    chosen = _chosen_day(raw_day, today)
    strip = _day_strip(branch, service, today, chosen or today, now, lang)
    if chosen is None:  # the first day with a free place, else today
        first = next((d for d in strip if d["free"]), strip[0])
        chosen = first["date"]
        for d in strip:
            d["chosen"] = d["date"] == chosen
    chosen_entry = next(d for d in strip if d["chosen"])
    slots = []
    for s in booking.day_slots(branch, service, chosen, now=now):
        local = branch.local(s.start)
        slots.append(
            {
                "start": local.isoformat(),
                "time": format_time(local, "short", locale=lang).replace("\u202f", " "),
                "available": s.available,
                "current": exclude is not None and s.start == exclude,
            }
        )
    day_label = format_date(chosen, "full", locale=lang)
    noon = datetime.combine(chosen, datetime.min.time(), branch.tz) + timedelta(hours=12)
    clock = format_time(noon, "short", locale=lang).replace("\u202f", " ")
    zone = local_when(noon, branch.tz, lang)["time"][len(clock) :].strip()
    return {
        "days": strip,
        "day": chosen,
        "day_label": day_label,
        "closed": chosen_entry["closed"],
        "slots": slots,
        "zone": zone,
        "busy": _busy(branch, service, now),
    }


def _busy(branch, service, now):
    """What the busy-hours partial of `insights` shows (`templates/insights/_busy.html`)."""
    try:
        from ..insights.queries import busy_context

        current_app.jinja_env.get_template("insights/_busy.html")
    except (ImportError, TemplateNotFound):  # pragma: no cover - insights is part of the app
        return None
    return busy_context(branch, service, now=now, locale=current_lang())


def _parse_start(raw: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat((raw or "").strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


# --- booking ---------------------------------------------------------------------------------


@bp.get("/b/<code>/book")
def start(code):
    """Choose the service to book."""
    branch = _branch_or_404(code)
    return page(
        "booking/services.html",
        branch=branch,
        services=booking.bookable_services(branch),
        lang=current_lang(),
    )


def _slots_page(branch, service, raw_day, *, status=200, error=None, now=None):
    now = now or utcnow()
    return page(
        "booking/slots.html",
        status,
        branch=branch,
        service=service,
        lang=current_lang(),
        error=error,
        **_slots_context(branch, service, raw_day, now),
    )


@bp.get("/b/<code>/book/<service>")
def slots(code, service):
    """The date strip and the free times of the chosen day."""
    branch = _branch_or_404(code)
    svc = _service_or_404(branch, service)
    return _slots_page(branch, svc, request.args.get("date"))


@bp.post("/b/<code>/book/<service>")
@limiter.limit(_hold_limit, on_breach=_too_many)
def hold(code, service):
    """Keep the chosen time while the customer fills in the form."""
    branch = _branch_or_404(code)
    svc = _service_or_404(branch, service)
    start_at = _parse_start(request.form.get("start"))
    if start_at is None:
        return _slots_page(branch, svc, None, status=422, error=_message("not_a_slot"))
    day = branch.business_day(start_at).isoformat()
    try:
        held = booking.hold(branch, svc, start_at, now=utcnow(), locale=current_lang())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _slots_page(branch, svc, day, status=exc.status, error=_message(exc.code))
    return redirect(
        url_for(
            "booking_pages.details",
            code=branch.code,
            service=svc.code,
            token=links.hold_token(held),
        ),
        303,
    )


def _held(branch, service, token):
    appointment = links.by_hold_token(token)
    if appointment.branch_id != branch.id or appointment.service_id != service.id:
        raise NotFound("no such hold", "invalid_link")
    return appointment


def _form_page(branch, service, appointment, *, status=200, error=None, values=None, now=None):
    now = now or utcnow()
    lang = current_lang()
    seconds_left = max(int((appointment.hold_expires_at - now).total_seconds()), 0)
    return page(
        "booking/details.html",
        status,
        branch=branch,
        service=service,
        appointment=appointment,
        when=_when(appointment, lang),
        seconds_left=seconds_left,
        expires_at=appointment.hold_expires_at.isoformat(),
        error=error,
        values=values or {},
        lang=lang,
    )


def _lapsed(branch, service, appointment, code="hold_expired", status=409):
    day = branch.business_day(appointment.start).isoformat()
    return _slots_page(branch, service, day, status=status, error=_message(code))


@bp.get("/b/<code>/book/<service>/details/<token>")
def details(code, service, token):
    """The form, while the hold lasts."""
    branch = _branch_or_404(code)
    svc = _service_or_404(branch, service)
    appointment = _held(branch, svc, token)
    now = utcnow()
    if appointment.status == AppointmentStatus.BOOKED:  # sent twice, or the back button
        return redirect(_booked_url(appointment), 303)
    if appointment.status != AppointmentStatus.HELD or appointment.hold_expires_at <= now:
        return _lapsed(branch, svc, appointment)
    return _form_page(branch, svc, appointment, now=now)


def _form_values() -> dict:
    form = request.form
    return {
        "name": (form.get("name") or "").strip(),
        "phone": (form.get("phone") or "").strip(),
        "email": (form.get("email") or "").strip(),
        "consent": form.get("consent") == "yes",
    }


def _form_errors(values: dict) -> dict:
    errors = {}
    if not values["name"] or len(values["name"]) > MAX_NAME:
        errors["name"] = str(_l("Please write your name."))
    if not values["phone"] and not values["email"]:
        errors["contact"] = str(_l("Please give a phone number or an e-mail address."))
    if len(values["phone"]) > MAX_PHONE:
        errors["phone"] = _message("invalid_phone")
    email = values["email"]
    if email and (
        len(email) > MAX_EMAIL or email.count("@") != 1 or "." not in email.split("@")[1]
    ):
        errors["email"] = str(_l("That is not a valid e-mail address."))
    return errors


@bp.post("/b/<code>/book/<service>/details/<token>")
@limiter.limit(_hold_limit, on_breach=_too_many)
def confirm(code, service, token):
    branch = _branch_or_404(code)
    svc = _service_or_404(branch, service)
    appointment = _held(branch, svc, token)
    if appointment.status == AppointmentStatus.BOOKED:
        return redirect(_booked_url(appointment), 303)
    values = _form_values()
    now = utcnow()
    errors = _form_errors(values)
    if errors:
        if appointment.status != AppointmentStatus.HELD or appointment.hold_expires_at <= now:
            return _lapsed(branch, svc, appointment)
        return _form_page(
            branch, svc, appointment, status=422, error=errors, values=values, now=now
        )
    try:
        booking.confirm_booking(
            appointment,
            now=now,
            name=values["name"],
            phone=values["phone"] or None,
            email=values["email"] or None,
            consent=values["consent"],
            region=branch.country or "ID",
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.code == "invalid_phone":
            return _form_page(
                branch,
                svc,
                appointment,
                status=422,
                error={"phone": _message(exc.code)},
                values=values,
                now=now,
            )
        appointment = _held(branch, svc, token)
        if appointment.status == AppointmentStatus.BOOKED:  # sent twice at once: the other won
            return redirect(_booked_url(appointment), 303)
        return _lapsed(branch, svc, appointment, exc.code, exc.status)
    return redirect(_booked_url(appointment), 303)


def _booked_url(appointment) -> str:
    return url_for("booking_pages.booked", token=links.manage_token(appointment))


# --- the booking, through its signed link ----------------------------------------------------


def _managed(token: str):
    appointment = links.by_manage_token(token)
    speak_branch_language(appointment.branch)
    return appointment


def _checking_in(appointment, now: datetime, lang: str) -> dict | None:
    """How to check in a booked appointment of today (None on another day): the window in the
    branch's time, whether it is open, closed (`late`) or not yet, and the branch's late rule."""
    branch = appointment.branch
    if appointment.status != AppointmentStatus.BOOKED:
        return None
    if branch.business_day(appointment.start) != branch.business_day(now):
        return None
    opens, closes = checkin.window(appointment)
    return {
        **check_in_times(appointment, lang),
        "state": "early" if now < opens else ("open" if now <= closes else "late"),
        "walk_in": branch.late_arrival == LateArrival.WALK_IN,
    }


def _booking_context(appointment, token: str) -> dict:
    lang = current_lang()
    now = utcnow()
    return {
        "appointment": appointment,
        "branch": appointment.branch,
        "service": appointment.service,
        "service_name": appointment.service.display_name(lang),
        "when": _when(appointment, lang),
        "token": token,
        "manage_url": links.manage_url(appointment),
        "qr": qr_svg(appointment.code, label=str(_l("QR code of your booking code"))),
        "changeable": appointment.status == AppointmentStatus.BOOKED and appointment.start > now,
        "checking_in": _checking_in(appointment, now, lang),
        "lang": lang,
    }


@bp.get("/appointments/<token>/booked")
def booked(token):
    """The confirmation: what to show at the kiosk, the calendar file, the manage link. The
    booking is remembered in this browser's session: scanned at the entrance, the poster
    offers to check it in (mobile/arrival.py)."""
    appointment = _managed(token)
    remember_appointment(appointment.id)
    return page("booking/booked.html", **_booking_context(appointment, token))


@bp.get("/appointments/<token>")
def manage(token):
    """The booking through its link (remembered in this browser, like the confirmation)."""
    appointment = _managed(token)
    remember_appointment(appointment.id)
    return page("booking/manage.html", **_booking_context(appointment, token))


@bp.get("/appointments/<token>/calendar.ics")
def calendar(token):
    appointment = _managed(token)
    response = make_response(calendar_for(appointment, now=utcnow()))
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Disposition"] = f'attachment; filename="{appointment.code}.ics"'
    return response


@bp.get("/appointments/<token>/cancel")
def cancel_confirm(token):
    """Ask once more before cancelling."""
    appointment = _managed(token)
    return page("booking/cancel.html", **_booking_context(appointment, token))


@bp.post("/appointments/<token>/cancel")
@limiter.limit(_manage_limit, on_breach=_too_many)
def cancel(token):
    appointment = _managed(token)
    booking.cancel(appointment, now=utcnow())
    db.session.commit()
    return redirect(url_for("booking_pages.manage", token=token, done="cancelled"), 303)


def _reschedule_page(appointment, token, raw_day, *, status=200, error=None):
    now = utcnow()
    return page(
        "booking/reschedule.html",
        status,
        error=error,
        **_booking_context(appointment, token),
        **_slots_context(
            appointment.branch, appointment.service, raw_day, now, exclude=appointment.start
        ),
    )


@bp.get("/appointments/<token>/reschedule")
def reschedule_choose(token):
    """Another time of the same service."""
    appointment = _managed(token)
    if appointment.status != AppointmentStatus.BOOKED or appointment.start <= utcnow():
        return _error_page("booking_not_active", 409, branch=appointment.branch)
    return _reschedule_page(appointment, token, request.args.get("date"))


@bp.post("/appointments/<token>/reschedule")
@limiter.limit(_manage_limit, on_breach=_too_many)
def reschedule(token):
    appointment = _managed(token)
    new_start = _parse_start(request.form.get("start"))
    if new_start is None:
        return _reschedule_page(appointment, token, None, status=422, error=_message("not_a_slot"))
    day = appointment.branch.business_day(new_start).isoformat()
    try:
        booking.reschedule(appointment, new_start, now=utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.code in ("booking_not_active", "booking_started"):
            return _error_page(exc.code, exc.status, branch=appointment.branch)
        appointment = links.by_manage_token(token)
        return _reschedule_page(
            appointment, token, day, status=exc.status, error=_message(exc.code)
        )
    return redirect(url_for("booking_pages.manage", token=token, done="rescheduled"), 303)
