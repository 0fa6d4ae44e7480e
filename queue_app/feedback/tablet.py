"""The feedback tablet (`/feedback/tablet/`): a paired device at one counter that shows the
survey of each visit step the counter finishes, and resets itself.

- `GET /feedback/tablet/` the page (a browser that is not a paired feedback tablet registers
  as one and shows its pairing code; `devices/web.py`);
- `GET /feedback/tablet/state` the tablet's state as JSON (`tablet_state.tablet_state`): the
  survey to show, if any, with its rating token, and a fresh CSRF token. The page polls it
  every few seconds besides listening on Socket.IO (`feedback:<branch>:<counter>`): events
  are hints, the database is the truth;
- `POST /feedback/tablet/rate` `{"token", "nps", "csat", "ces", "reasons", "comment",
  "locale"}` (JSON, `X-CSRFToken`) -> `record_response(..., channel=TABLET)`, 201; a step
  rated already is 409 `already_rated` (the page shows its thanks: a double tap never records
  twice), a token of another counter 403, an expired or altered one 404, bad values 422.

Every answer of the JSON endpoints is `{"error": {"code", "message"}}` on refusal, never a
500 for bad input. The page speaks both languages: the survey starts in the customer's
language (or the branch's), and a button switches.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, make_response, render_template, request
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf

from ..core.errors import DomainError
from ..core.types import utcnow
from ..devices.models import DeviceKind
from ..devices.web import device_required
from ..extensions import db
from .models import FeedbackChannel
from .questions import REASONS
from .services import record_response
from .tablet_state import tablet_state, ticket_for_rating

bp = Blueprint("feedback_tablet", __name__, url_prefix="/feedback/tablet")

FEEDBACK = DeviceKind.FEEDBACK
DEFAULT_THANKS_S = 8  # the thanks screen, then idle again
DEFAULT_IDLE_S = 60  # an unanswered survey goes back to idle after this long untouched
POLL_S = 3  # the state poll (besides the socket's pushes)
MAX_BODY = 8 * 1024
ANSWER_FIELDS = ("nps", "csat", "ces")


def _strings() -> dict:
    """What the page says, in the current language (the caller forces each one in turn)."""
    return {
        "welcome": _("Thank you for visiting"),
        "idle_hint": _("When your visit at this counter is finished, tell us how it went here."),
        "visit": _("Ticket %(number)s · %(service)s", number="{number}", service="{service}"),
        "progress": _("Question %(n)s of %(total)s", n="{n}", total="{total}"),
        "nps": _("How likely are you to recommend us to a friend or colleague?"),
        "nps_low": _("Not at all likely"),
        "nps_high": _("Extremely likely"),
        "csat": _("How satisfied are you with the service you received today?"),
        "csat_low": _("Very dissatisfied"),
        "csat_high": _("Very satisfied"),
        "ces": _("How easy was it to get done what you came for today?"),
        "ces_low": _("Very difficult"),
        "ces_high": _("Very easy"),
        "reasons": _("What was it mostly about? Choose any that apply (optional)."),
        "comment": _("Anything else you would like to tell us? (optional)"),
        "send": _("Send"),
        "next": _("Next"),
        "back": _("Back"),
        "thanks": _("Thank you for your feedback!"),
        "thanks_more": _("It helps us serve you better."),
        "failed": _("Sorry, your answer could not be sent. Please try again."),
        "retry": _("Try again"),
        "expired": _("Sorry, this survey has closed."),
        "offline": _("Connection lost, reconnecting…"),
        "reasons_labels": {code: str(label) for code, label in REASONS.items()},
    }


def _all_strings() -> dict:
    texts = {}
    for language in current_app.config["LANGUAGES"]:
        with force_locale(language):
            texts[language] = _strings()
    return texts


def _json_error(status: int, code: str, message: str):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError):
    db.session.rollback()
    return _json_error(400, "csrf", "the page's CSRF token is missing or too old: fetch /state")


@bp.get("/")
@device_required(FEEDBACK)
def index():
    device = g.device
    branch = device.branch
    counter = device.counter if device.counter and device.counter.branch_id == branch.id else None
    config = current_app.config
    with force_locale(branch.locale):
        html = render_template(
            "feedback/tablet.html",
            device=device,
            branch=branch,
            counter=counter,
            lang=branch.locale,
            languages=list(config["LANGUAGES"]),
            strings=_all_strings(),
            timing={
                "thanks_ms": 1000 * int(config.get("FEEDBACK_TABLET_THANKS_S", DEFAULT_THANKS_S)),
                "idle_ms": 1000 * int(config.get("FEEDBACK_TABLET_IDLE_S", DEFAULT_IDLE_S)),
                "poll_ms": 1000 * POLL_S,
            },
        )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/state")
@device_required(FEEDBACK, json=True)
def state():
    body = tablet_state(g.device, utcnow())
    db.session.rollback()  # read only
    body["csrf"] = generate_csrf()  # the page stays open for days: its token stays fresh
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _answers(data: dict) -> dict:
    """The answers of the body as the service takes them; it checks scales and questions."""
    answers = {name: data.get(name) for name in ANSWER_FIELDS}
    reasons = data.get("reasons")
    answers["reasons"] = () if reasons is None else reasons
    answers["comment"] = data.get("comment")
    locale = data.get("locale")
    languages = current_app.config["LANGUAGES"]
    answers["locale"] = locale if isinstance(locale, str) and locale in languages else None
    return answers


@bp.post("/rate")
@device_required(FEEDBACK, json=True)
def rate():
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _json_error(413, "too_large", "the body is too large")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _json_error(400, "invalid_json", "send a JSON object")
    if not isinstance(data.get("reasons", []), (list, type(None))):
        return _json_error(422, "unknown_reason", "reasons must be a list of reason codes")
    now = utcnow()
    try:
        ticket = ticket_for_rating(data.get("token"), g.device)
        response = record_response(
            ticket, channel=FeedbackChannel.TABLET, now=now, **_answers(data)
        )
    except DomainError as error:
        db.session.rollback()
        return _json_error(error.status, error.code, error.message)
    db.session.commit()
    body = {"status": "recorded", "number": ticket.number, "at": response.submitted_at.isoformat()}
    return jsonify(body), 201
