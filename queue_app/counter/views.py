"""Counter screen views: parse, check access, call one engine service, commit once, answer.

Page actions are posted by the page's script (`fetch`, JSON answers) or, on the counter
picker, by plain forms. Refusals of the engine (`DomainError`) roll the request back and are
answered with their 4xx status and a sentence in the page's language, as JSON for `fetch`
and as the page for a form; never a 500.
"""

from __future__ import annotations

from functools import wraps

from flask import (
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from ..branches.models import Branch, Counter, CounterStatus
from ..core.errors import DomainError, NotAllowed
from ..core.types import utcnow
from ..extensions import db, login_manager
from ..tickets import services as engine
from ..tickets.models import Ticket, TicketStatus
from . import bp
from .choices import (
    NOTE_MAX,
    OUTCOME_CODES,
    OUTCOMES,
    PAUSE_CODES,
    PAUSE_REASONS,
    PAUSE_TEXT_MAX,
    error_message,
)
from .state import counter_state, is_supervisor

# the keys of the keyboard shortcuts, the same in every language
SHORTCUTS = ("N", "R", "S", "F", "H", "T", "P")
MAX_ID = 2**31 - 1


class PageError(Exception):
    """Bad input found by the view itself, answered like a domain error."""

    def __init__(self, code: str, status: int = 422):
        super().__init__(code)
        self.code = code
        self.status = status


def wants_json() -> bool:
    accept = request.accept_mimetypes
    return request.is_json or accept.best_match(["application/json", "text/html"]) == (
        "application/json"
    )


def _error_response(code: str, status: int, detail: str | None = None):
    body = {"code": code, "message": error_message(code)}
    if detail:
        body["detail"] = detail
    return jsonify(error=body), status


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    db.session.rollback()
    if wants_json():
        return _error_response(error.code, error.status, error.message)
    return _page_refusal(error_message(error.code), error.status)


@bp.errorhandler(PageError)
def _page_error(error: PageError):
    db.session.rollback()
    if wants_json():
        return _error_response(error.code, error.status)
    return _page_refusal(error_message(error.code), error.status)


def _page_refusal(message: str, status: int):
    """A refused page (another branch, no such counter) is an error page; a refused form
    post shows the counter picker again with the message."""
    if request.method == "GET" and status in (403, 404):
        from ..auth.access import page_error

        return page_error(status, message)
    return _picker_response(message, status)


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError):
    db.session.rollback()
    if wants_json():
        return _error_response("csrf", 400, error.description)
    return _picker_response(error_message("csrf"), 400)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    if not wants_json():
        return error
    db.session.rollback()
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(error.code, "invalid")
    return _error_response(code, error.code or 400, error.description)


@bp.before_request
def _who():
    if current_user.is_authenticated:
        # the signed-in person's language preference (queue_app.i18n.select_locale)
        g.user = current_user._get_current_object()


def floor_login_required(view):
    """Signed in, else 401 for the page's script or the sign-in page for a browser."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            if wants_json() or request.method != "GET":
                return _error_response("unauthorized", 401)
            if "auth.login" in current_app.view_functions:
                return login_manager.unauthorized()
            abort(401)
        return view(*args, **kwargs)

    return wrapper


# --- lookups ----------------------------------------------------------------------------


def _floor_branches() -> list[Branch]:
    user = current_user
    query = select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)
    return [b for b in db.session.scalars(query) if user.can_work_floor(b)]


def _branch(code: str) -> Branch:
    branch = None
    if 0 < len(code) <= 16:
        branch = db.session.scalar(select(Branch).where(Branch.code == code, Branch.active))
    if branch is None:
        abort(404)
    if not current_user.can_work_floor(branch):
        raise NotAllowed(f"{current_user.username} may not serve at branch {branch.code}")
    g.branch_locale = branch.locale
    return branch


def _counter(branch: Branch, counter_id: int) -> Counter:
    counter = db.session.get(Counter, counter_id) if 1 <= counter_id <= MAX_ID else None
    if counter is None or counter.branch_id != branch.id:
        raise PageError("not_found", 404)
    return counter


def _ticket(branch: Branch, ticket_id: int) -> Ticket:
    ticket = db.session.get(Ticket, ticket_id) if 1 <= ticket_id <= MAX_ID else None
    if ticket is None or ticket.branch_id != branch.id:
        raise PageError("bad_ticket", 404)
    return ticket


def _form() -> dict:
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    return request.form.to_dict()


def _text(data: dict, key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PageError("invalid")
    value = value.strip()
    if len(value) > limit:
        raise PageError("too_long")
    return value or None


# --- pages ------------------------------------------------------------------------------


def _picker_response(error: str | None = None, status: int = 200):
    if not current_user.is_authenticated:
        return _error_response("unauthorized", 401)
    branches = _floor_branches()
    code = request.view_args.get("branch_code") if request.view_args else None
    code = code or request.args.get("branch")
    chosen = next((b for b in branches if b.code == code), None)
    if chosen is None and len(branches) == 1:
        chosen = branches[0]
    mine = db.session.scalar(
        select(Counter).where(
            Counter.staff_id == current_user.id, Counter.status != CounterStatus.CLOSED
        )
    )
    if chosen is not None:
        g.branch_locale = chosen.locale
    html = render_template(
        "counter/index.html",
        branches=branches,
        chosen=chosen,
        mine=mine,
        error=error,
        supervisor=chosen is not None and is_supervisor(current_user, chosen),
    )
    return html, status


@bp.get("/")
@floor_login_required
def index():
    """Choose a branch (when there are several) and a counter to open."""
    if not _floor_branches():
        return _picker_response(error_message("forbidden"), 403)
    return _picker_response()


@bp.get("/<branch_code>/<int:counter_id>/")
@floor_login_required
def screen(branch_code, counter_id):
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    state = counter_state(counter, current_user, utcnow())
    db.session.rollback()
    return render_template(
        "counter/screen.html",
        branch=branch,
        counter=counter,
        state=state,
        outcomes=OUTCOMES,
        pause_reasons=PAUSE_REASONS,
        shortcuts=SHORTCUTS,
        note_max=NOTE_MAX,
        pause_text_max=PAUSE_TEXT_MAX,
    )


@bp.get("/<branch_code>/<int:counter_id>/state")
@floor_login_required
def state(branch_code, counter_id):
    """The screen's state as JSON: first render, fallback polling, after a realtime hint."""
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    data = counter_state(counter, current_user, utcnow())
    db.session.rollback()
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- actions ----------------------------------------------------------------------------


def _done(branch: Branch, counter: Counter, message: str, **extra):
    """Commit the unit of work, then answer with the fresh state (read after the commit)."""
    db.session.commit()
    if not wants_json():
        return redirect(url_for("counter.screen", branch_code=branch.code, counter_id=counter.id))
    data = counter_state(counter, current_user, utcnow())
    db.session.rollback()
    return jsonify(message=message, state=data, **extra)


@bp.post("/<branch_code>/<int:counter_id>/open")
@floor_login_required
def open_counter(branch_code, counter_id):
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    engine.open_counter(counter, current_user, now=utcnow())
    return _done(branch, counter, _("%(counter)s is open.", counter=counter.name))


@bp.post("/<branch_code>/<int:counter_id>/pause")
@floor_login_required
def pause_counter(branch_code, counter_id):
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    data = _form()
    code = _text(data, "reason", 40)
    if code not in PAUSE_CODES:
        raise PageError("bad_reason")
    text = _text(data, "text", PAUSE_TEXT_MAX)
    engine.pause_counter(
        counter, current_user, now=utcnow(), reason=f"{code}: {text}" if text else code
    )
    return _done(branch, counter, _("%(counter)s is paused.", counter=counter.name))


@bp.post("/<branch_code>/<int:counter_id>/close")
@floor_login_required
def close_counter(branch_code, counter_id):
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    engine.close_counter(counter, current_user, now=utcnow())
    return _done(branch, counter, _("%(counter)s is closed.", counter=counter.name))


@bp.post("/<branch_code>/<int:counter_id>/call-next")
@floor_login_required
def call_next(branch_code, counter_id):
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    ticket = engine.call_next(counter, current_user, now=utcnow())
    if ticket is None:
        return _done(branch, counter, _("Nobody is waiting for this counter."), called=None)
    return _done(
        branch, counter, _("Ticket %(number)s called.", number=ticket.number), called=ticket.id
    )


TICKET_MESSAGES = {
    "call": lambda t: _("Ticket %(number)s called.", number=t.number),
    "recall": lambda t: (
        _("Ticket %(number)s marked as a no-show.", number=t.number)
        if t.status == TicketStatus.NO_SHOW
        else _("Ticket %(number)s called again.", number=t.number)
    ),
    "no_show": lambda t: _("Ticket %(number)s marked as a no-show.", number=t.number),
    "start": lambda t: _("Service of ticket %(number)s started.", number=t.number),
    "finish": lambda t: _("Ticket %(number)s finished.", number=t.number),
    "hold": lambda t: _("Ticket %(number)s is on hold.", number=t.number),
    "resume": lambda t: _("Ticket %(number)s waits again.", number=t.number),
    "cancel": lambda t: _("Ticket %(number)s cancelled.", number=t.number),
    "transfer": lambda t: _("Ticket %(number)s transferred.", number=t.number),
}


def _ticket_action(action: str, branch: Branch, counter: Counter, ticket: Ticket, data: dict):
    """One engine call per action; returns the ticket it produced."""
    now = utcnow()
    user = current_user._get_current_object()
    if action == "call":
        return engine.call_ticket(ticket, counter, user, now=now)
    if action == "recall":
        return engine.recall(ticket, user, now=now)
    if action == "no_show":
        return engine.mark_no_show(ticket, user, now=now)
    if action == "start":
        return engine.start(ticket, user, now=now)
    if action == "finish":
        outcome = _text(data, "outcome", 40)
        if outcome not in OUTCOME_CODES:
            raise PageError("bad_outcome")
        note = _text(data, "note", NOTE_MAX)
        return engine.finish(ticket, user, now=now, outcome=outcome, note=note)
    if action == "hold":
        return engine.hold(ticket, user, now=now, note=_text(data, "note", NOTE_MAX))
    if action == "resume":
        return engine.resume(ticket, user, now=now)
    if action == "cancel":
        return engine.cancel(ticket, user, now=now, reason=_text(data, "reason", 200))
    if action == "transfer":
        service = None
        target = None
        service_code = _text(data, "service", 32)
        if service_code:
            service = next((s for s in branch.services if s.code == service_code), None)
            if service is None:
                raise PageError("bad_service")
        counter_value = data.get("counter_id")
        if counter_value not in (None, ""):
            try:
                target = _counter(branch, int(counter_value))
            except (TypeError, ValueError):
                raise PageError("bad_counter") from None
            except PageError:
                raise PageError("bad_counter") from None
        keep = data.get("keep_place")
        keep_place = None if keep is None else keep in (True, "1", "true", "on", "yes")
        return engine.transfer(
            ticket,
            user,
            now=now,
            service=service,
            counter=target,
            note=_text(data, "note", NOTE_MAX),
            keep_place=keep_place,
        )
    abort(404)


@bp.post("/<branch_code>/<int:counter_id>/tickets/<int:ticket_id>/<action>")
@floor_login_required
def ticket_action(branch_code, counter_id, ticket_id, action):
    action = action.replace("-", "_")
    if action not in TICKET_MESSAGES:
        abort(404)
    branch = _branch(branch_code)
    counter = _counter(branch, counter_id)
    ticket = _ticket(branch, ticket_id)
    result = _ticket_action(action, branch, counter, ticket, _form())
    return _done(branch, counter, TICKET_MESSAGES[action](result), ticket=result.id)
