"""Why joining a queue remotely, or checking in an appointment at the entrance, was refused,
in the customer's words (by domain error code)."""

from flask_babel import lazy_gettext as _l

# why a join (or its code) was refused, by the domain error's code
MESSAGES = {
    # the form itself
    "no_service": _l("Choose a service."),
    "no_contact": _l("Give your phone number or your e-mail address."),
    "no_consent": _l("Please agree that we may send you messages about your ticket."),
    "unknown_service": _l("This service is not offered at this branch."),
    "service_unavailable": _l("This service is not available right now. Please choose another."),
    # the contact
    "invalid_contact": _l(
        "That is not a valid phone number or e-mail address. Please check it and try again."
    ),
    "invalid_phone": _l("That is not a valid phone number. Please check it and try again."),
    "invalid_email": _l("That is not a valid e-mail address. Please check it and try again."),
    # remote intake closed (tickets/remote.py Intake.reason, and `intake_<reason>` errors)
    "unavailable": _l("This service is not available right now."),
    "remote_off": _l("This branch does not take remote tickets."),
    "closed_day": _l("The branch is closed today."),
    "closed_hours": _l("The branch is closed now. Please come back during opening hours."),
    "capacity_used": _l(
        "The queue is full until closing time: no more remote tickets today. "
        "You can book a visit instead."
    ),
    "no_counter": _l("No counter serves this service here at the moment. You can book a visit."),
    # limits
    "already_in_queue": _l("You already have a ticket in this branch's queue."),
    "too_many_codes": _l("Too many codes were asked for. Wait a while and try again."),
    "too_many_requests": _l("Too many tries. Wait a while and try again."),
    # the code
    "no_code": _l("No code is waiting for you: ask for a new one."),
    "wrong_code": _l("That code is not right. Check the message we sent and try again."),
    "code_expired": _l("This code has expired. Ask for a new one."),
    "too_many_tries": _l("Too many wrong codes. Ask for a new one."),
    "code_other_queue": _l("This code was sent for another queue. Ask for a new one."),
}
FALLBACK = _l("That did not work. Please try again, or ask our staff for help.")
RATE_LIMITED = _l("Too many tries from this network. Wait a minute and try again.")


def message_for(code: str | None) -> str:
    """The message of a domain error code; `intake_<reason>` reads as the reason."""
    code = code or ""
    if code.startswith("intake_"):
        code = code[len("intake_") :]
    return str(MESSAGES.get(code, FALLBACK))


# the entrance scan with another branch's key, or none
BAD_KEY = _l(
    "This QR code is not the one at this branch's entrance. Scan the poster at the entrance "
    "again, or ask our staff for help."
)

# why an appointment was not checked in on the phone (booking/checkin.py, mobile/arrival.py)
CHECK_IN_MESSAGES = {
    "wrong_arrival_key": BAD_KEY,
    "unknown_booking": _l(
        "This phone has no such booking at this branch. Open your booking's link on this phone "
        "and scan again, or type your booking code at the kiosk."
    ),
    "booking_not_active": _l(
        "This booking cannot be checked in: it was cancelled or its time has passed."
    ),
    # %(time)s: when check-in opens, in the branch's time ("09:30", or a day and time)
    "too_early": _l("It is too early to check in. You can check in from %(time)s."),
    "too_late": _l(
        "The time to check in for this booking has passed. Please take a ticket at the kiosk, "
        "or ask our staff for help."
    ),
}
CHECK_IN_FALLBACK = _l("We could not check you in. Please try again, or ask our staff for help.")


def check_in_message(code: str | None, **values) -> str:
    """Why an appointment was not checked in (`values` fill the message's placeholders)."""
    message = CHECK_IN_MESSAGES.get(code or "")
    if message is None:
        return str(CHECK_IN_FALLBACK)
    return str(message) % values if values else str(message)
