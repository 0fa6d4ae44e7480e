"""What the phone pages share: finding the branch or ticket of a URL, rendering in the right
language, absolute links for QR codes, the tickets this phone joined and the appointments it
booked or opened."""

from __future__ import annotations

from flask import current_app, g, make_response, render_template, session
from sqlalchemy import select

from ..branches.models import Branch
from ..extensions import db
from ..tickets.models import Ticket
from ..tickets.queries import ticket_by_token

# the visit tokens of the tickets this browser joined remotely, newest last (for the arrival
# scan at the entrance); a handful at most
JOINED_KEY = "mobile_joined"
JOINED_MAX = 5
# the ids of the appointments booked or opened (manage link) in this browser, newest last: the
# entrance poster offers to check them in (the session is a signed cookie: not forgeable)
APPOINTMENTS_KEY = "mobile_appointments"
APPOINTMENTS_MAX = 5
# the join that waits for its one-time code: {"branch", "service", "contact"}
PENDING_KEY = "mobile_pending_join"

MAX_CODE = 16  # longer is not a branch code
MAX_TOKEN = 64


def find_branch(code: str) -> Branch | None:
    """The active branch with this code, or None."""
    if not code or len(code) > MAX_CODE:
        return None
    branch = db.session.scalar(select(Branch).where(Branch.code == code))
    if branch is None or not branch.active:
        return None
    return branch


def find_ticket(token: str) -> Ticket | None:
    """The current step of the visit this token follows, or None."""
    if not token or len(token) > MAX_TOKEN:
        return None
    return ticket_by_token(token)


def speak_branch_language(branch: Branch | None) -> None:
    """Let the branch's language be the default of this page (a choice of the person wins,
    see queue_app/i18n.py)."""
    if branch is not None:
        g.branch_locale = branch.locale


def page(template: str, http_status: int = 200, /, **context):
    """A phone page; never cached (positions and waits change every minute)."""
    response = make_response(render_template(template, **context), http_status)
    response.headers["Cache-Control"] = "no-store"
    return response


def not_found(message: str, *, branch: Branch | None = None):
    return page("mobile/not_found.html", 404, message=message, branch=branch)


def public_url(path: str) -> str:
    """An absolute link for a QR code or a message: `PUBLIC_BASE_URL` + `path` (as
    kiosk/links.py builds the tracking link)."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    return f"{base}{path}"


def remember_joined(token: str) -> None:
    tokens = [t for t in session.get(JOINED_KEY, []) if isinstance(t, str) and t != token]
    tokens.append(token)
    session[JOINED_KEY] = tokens[-JOINED_MAX:]


def joined_tokens() -> list[str]:
    """Newest first."""
    tokens = session.get(JOINED_KEY, [])
    if not isinstance(tokens, list):
        return []
    return [t for t in reversed(tokens) if isinstance(t, str)]


def remember_appointment(appointment_id: int) -> None:
    stored = session.get(APPOINTMENTS_KEY)
    ids = [i for i in stored if _is_id(i)] if isinstance(stored, list) else []
    if ids[-1:] == [appointment_id]:
        return  # already the newest: the cookie stays as it is
    ids = [i for i in ids if i != appointment_id] + [appointment_id]
    session[APPOINTMENTS_KEY] = ids[-APPOINTMENTS_MAX:]


def _is_id(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def appointment_ids() -> list[int]:
    """The appointments this browser booked or opened, newest first."""
    ids = session.get(APPOINTMENTS_KEY, [])
    if not isinstance(ids, list):
        return []
    return [i for i in reversed(ids) if _is_id(i)]


def plural_pattern(singular: str, plural: str) -> dict:
    """A plural message as `{one, other}` patterns with `{n}` for the number, for the
    tracking page's script (it formats the numbers it hears live)."""
    from flask_babel import ngettext

    marker = 987654
    return {
        "one": ngettext(singular, plural, 1).replace("1", "{n}", 1),
        "other": ngettext(singular, plural, marker).replace(str(marker), "{n}"),
    }


def current_lang() -> str:
    """The language this page speaks (after `speak_branch_language`)."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale else current_app.config["BABEL_DEFAULT_LOCALE"]
