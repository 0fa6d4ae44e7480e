"""The recovery survey's page: `/r/case/<signed>`, one question (NPS 0-10) after a case was
resolved. The answer is stored on the case; a still-unhappy one reopens it
(`services.answer_recovery`)."""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, render_template, request

from ..core.errors import Conflict, NotFound
from ..core.types import utcnow
from ..extensions import db, limiter
from . import services
from .links import by_recovery_token

bp = Blueprint("case_recovery", __name__, url_prefix="/r/case")


def _page(template: str, status: int = 200, **context):
    return render_template(f"cases/{template}", **context), status


@bp.get("/<token>")
def question(token):
    try:
        case, round_ = by_recovery_token(token)
    except NotFound:
        return _page("recovery_message.html", 404, state="invalid")
    answered = case.recovery_nps is not None and any(
        s.kind == "recovery_answered" and s.data.get("round") == round_ for s in case.steps
    )
    if answered or round_ != services.resolution_round(case):
        return _page("recovery_message.html", state="closed")
    return _page("recovery.html", case=case, token=token)


def _limit() -> str:
    """Answers per network address, as every rating (`FEEDBACK_RATE_LIMIT`)."""
    return current_app.config["FEEDBACK_RATE_LIMIT"]


def _too_many(_limit_hit):
    # Flask-Limiter uses what on_breach returns only when it is a response
    return make_response(*_page("recovery_message.html", 429, state="too_many"))


@bp.post("/<token>")
@limiter.limit(_limit, on_breach=_too_many)
def answer(token):
    try:
        case, round_ = by_recovery_token(token)
    except NotFound:
        return _page("recovery_message.html", 404, state="invalid")
    raw = request.form.get("nps", "")
    if not raw.isdigit() or not 0 <= int(raw) <= 10:
        return _page("recovery.html", 422, case=case, token=token, error=True)
    try:
        services.answer_recovery(case, round_=round_, nps=int(raw), now=utcnow())
    except Conflict:
        db.session.rollback()
        return _page("recovery_message.html", 409, state="closed")
    db.session.commit()
    return _page("recovery_message.html", state="thanks")
