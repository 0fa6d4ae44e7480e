"""A branch's alert thresholds page (`/admin/branches/<code>/alerts`): its rules in the units
people think in (minutes, customers, percent), each editable on its own, a form for a new
rule, and deleting one. Admins, and branch managers for their own branches. Every change goes
through `alerts.services` (which checks everything); the alert list itself is the dashboard's.
"""

from __future__ import annotations

import math

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import select

from ..alerts import queries
from ..alerts import services as alerts
from ..alerts.models import AlertRule, Metric
from ..auth.access import branch_access, forbidden, page_error, roles_required
from ..branches.models import Branch
from ..branches.settings import can_manage_settings
from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db
from . import bp
from .views import MANAGERS

METRIC_NAMES = {
    Metric.LONGEST_WAIT_S: lazy_gettext("Longest wait"),
    Metric.QUEUE_LENGTH: lazy_gettext("Customers waiting"),
    Metric.EWT_S: lazy_gettext("Estimated wait of a new ticket"),
    Metric.IDLE_COUNTER_S: lazy_gettext("Counter idle while customers wait"),
    Metric.NO_SHOW_RATE: lazy_gettext("No-show rate"),
}
UNITS = {
    Metric.LONGEST_WAIT_S: lazy_gettext("min"),
    Metric.QUEUE_LENGTH: lazy_gettext("customers"),
    Metric.EWT_S: lazy_gettext("min"),
    Metric.IDLE_COUNTER_S: lazy_gettext("min"),
    Metric.NO_SHOW_RATE: "%",
}
# the service's refusal codes, as the page says them
REFUSALS = {
    "invalid_raise_at": lazy_gettext("The level that raises the alert is out of range."),
    "invalid_clear_at": lazy_gettext("The level that clears the alert is out of range."),
    "invalid_hysteresis": lazy_gettext(
        "The level that clears the alert must be at or below the level that raises it."
    ),
    "invalid_clear_after_s": lazy_gettext("The calm time must be from 0 to 1440 minutes."),
    "invalid_ack_within_s": lazy_gettext(
        "The time to acknowledge must be from 1 minute to 7 days, or empty for never."
    ),
    "invalid_window_s": lazy_gettext("The window must be from 5 to 1440 minutes."),
    "invalid_min_count": lazy_gettext("The minimum number of calls must be from 1 to 10000."),
    "rule_exists": lazy_gettext("This branch has a rule for that measure and service already."),
    "invalid_metric": lazy_gettext("Choose what the rule watches."),
    "unknown_service": lazy_gettext("Choose one of the branch's services."),
}


class FormError(Exception):
    pass


def _scale(metric: Metric) -> float:
    """Stored value per shown unit: seconds per minute, share per percent, 1 per customer."""
    if metric == Metric.NO_SHOW_RATE:
        return 0.01
    if metric == Metric.QUEUE_LENGTH:
        return 1
    return 60


def _shown(value: float | None, scale: float) -> str:
    if value is None:
        return ""
    number = round(value / scale, 2)
    return str(int(number)) if number == int(number) else str(number)


def _number(raw: str | None, scale: float, *, required: bool = True):
    raw = (raw or "").strip().replace(",", ".")[:20]
    if not raw:
        if required:
            raise FormError(_("Fill in every level."))
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FormError(_("Enter numbers only.")) from None
    if not math.isfinite(value):
        raise FormError(_("Enter numbers only."))
    stored = value * scale
    return round(stored, 4) if scale < 1 else round(stored)


def _values(form, metric: Metric) -> dict:
    scale = _scale(metric)
    values = {
        "raise_at": _number(form.get("raise_at"), scale),
        "clear_at": _number(form.get("clear_at"), scale),
        "clear_after_s": _number(form.get("clear_after_min"), 60, required=False) or 0,
        "ack_within_s": _number(form.get("ack_within_min"), 60, required=False),
        "enabled": form.get("enabled") == "1",
    }
    if metric == Metric.NO_SHOW_RATE:
        values["window_s"] = _number(form.get("window_min"), 60)
        values["min_count"] = _number(form.get("min_count"), 1)
    return values


def _row(rule: AlertRule, locale: str) -> dict:
    scale = _scale(rule.metric)
    return {
        "rule": rule,
        "name": METRIC_NAMES[rule.metric],
        "unit": UNITS[rule.metric],
        "service": rule.service.display_name(locale) if rule.service else None,
        "raise_at": _shown(rule.raise_at, scale),
        "clear_at": _shown(rule.clear_at, scale),
        "clear_after_min": _shown(rule.clear_after_s, 60),
        "ack_within_min": _shown(rule.ack_within_s, 60),
        "window_min": _shown(rule.window_s, 60),
        "min_count": str(rule.min_count),
        "enabled": rule.enabled,
    }


def _locale() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "id")


def _page(branch: Branch, *, error=None, error_rule=None, form=None, status=200):
    locale = _locale()
    response = current_app.make_response(
        render_template(
            "admin/branch_alerts.html",
            branch=branch,
            rows=[_row(r, locale) for r in queries.rules_of(db.session, branch.id)],
            metrics=[(m.value, METRIC_NAMES[m], UNITS[m]) for m in Metric],
            services=[(s.code, s.display_name(locale)) for s in branch.services if s.active],
            error=error,
            error_rule=error_rule,
            form=form or {},
        )
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _managed(code: str) -> Branch:
    branch = db.session.scalar(select(Branch).where(Branch.code == code[:64]))
    user = branch_access(branch)
    if not can_manage_settings(user, branch):
        forbidden(
            _("You may not change the alert thresholds of branch %(code)s.", code=branch.code)
        )
    return branch


def _refusal(error: DomainError) -> str:
    message = REFUSALS.get(error.code)
    return str(message) if message else _("The rule was not saved: check the values.")


def _rule_of(branch: Branch, rule_id: int) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id) if 0 < rule_id < 2**31 else None
    if rule is None or rule.branch_id != branch.id:
        abort(page_error(404, _("There is no such rule.")))
    return rule


@bp.get("/branches/<code>/alerts")
@roles_required(*MANAGERS)
def branch_alerts(code: str):
    return _page(_managed(code))


@bp.post("/branches/<code>/alerts")
@roles_required(*MANAGERS)
def create_alert_rule(code: str):
    branch = _managed(code)
    form = {k: v[:40] for k, v in request.form.items()}
    try:
        metric = Metric(form.get("metric", ""))
    except ValueError:
        return _page(branch, error=str(REFUSALS["invalid_metric"]), form=form, status=422)
    service = None
    if form.get("service"):
        service = next((s for s in branch.services if s.code == form["service"]), None)
        if service is None:
            return _page(branch, error=str(REFUSALS["unknown_service"]), form=form, status=422)
    try:
        values = _values(request.form, metric)
        values.setdefault("window_s", 3600)
        values.setdefault("min_count", 10)
        raise_at, clear_at = values.pop("raise_at"), values.pop("clear_at")
        alerts.create_rule(
            db.session,
            branch,
            metric=metric,
            service=service,
            raise_at=raise_at,
            clear_at=clear_at,
            now=utcnow(),
            **values,
        )
    except FormError as error:
        db.session.rollback()
        return _page(branch, error=str(error), form=form, status=422)
    except DomainError as error:
        db.session.rollback()
        return _page(branch, error=_refusal(error), form=form, status=422)
    db.session.commit()
    flash(_("The rule was added."), "success")
    return redirect(url_for("admin.branch_alerts", code=branch.code))


@bp.post("/branches/<code>/alerts/<int:rule_id>")
@roles_required(*MANAGERS)
def update_alert_rule(code: str, rule_id: int):
    branch = _managed(code)
    rule = _rule_of(branch, rule_id)
    try:
        values = _values(request.form, rule.metric)
        done = alerts.update_rule(rule, now=utcnow(), **values)
    except FormError as error:
        db.session.rollback()
        return _page(branch, error=str(error), error_rule=rule_id, status=422)
    except DomainError as error:
        db.session.rollback()
        return _page(branch, error=_refusal(error), error_rule=rule_id, status=422)
    db.session.commit()
    flash(_("Saved.") if done else _("Nothing changed: the rule is as it was."), "success")
    return redirect(url_for("admin.branch_alerts", code=branch.code))


@bp.post("/branches/<code>/alerts/<int:rule_id>/delete")
@roles_required(*MANAGERS)
def delete_alert_rule(code: str, rule_id: int):
    branch = _managed(code)
    alerts.delete_rule(_rule_of(branch, rule_id), now=utcnow())
    db.session.commit()
    flash(_("The rule was deleted. Its past alerts are kept."), "success")
    return redirect(url_for("admin.branch_alerts", code=branch.code))
