"""Webhook pages (`/admin/webhooks`), admins only: the endpoints (add, change, turn off, a new
secret; a secret is shown once, on the page that made it), the delivery log (filter by status
and event) and sending a failed delivery again (same payload and delivery id). Every change
goes through `webhooks.services`.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import select

from ..accounts.models import Role
from ..auth.access import page_error, roles_required
from ..branches.models import Branch
from ..core.errors import DomainError
from ..core.types import utcnow
from ..extensions import db
from ..webhooks import services as webhooks
from ..webhooks.models import EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from . import bp

PAGE_SIZE = 100

EVENT_NAMES = {
    "ticket.called": lazy_gettext("A ticket is called"),
    "ticket.finished": lazy_gettext("A ticket is finished"),
    "feedback.received": lazy_gettext("Feedback is received"),
    "case.escalated": lazy_gettext("A case is escalated"),
    "alert.raised": lazy_gettext("An alert is raised"),
}
STATUS_NAMES = {
    DeliveryStatus.PENDING: lazy_gettext("Pending"),
    DeliveryStatus.DELIVERED: lazy_gettext("Delivered"),
    DeliveryStatus.FAILED: lazy_gettext("Failed"),
}
REFUSALS = {
    "invalid_url": lazy_gettext("Enter an address starting with http:// or https://."),
    "url_not_allowed": lazy_gettext(
        "This address is on this server or a private network. Webhooks go to public "
        "addresses, and to the networks your operator allows (WEBHOOK_ALLOWED_NETWORKS)."
    ),
    "invalid_events": lazy_gettext("Choose one or more events."),
    "invalid_name": lazy_gettext("The name is too long (at most 80 characters)."),
    "not_failed": lazy_gettext("Only a failed delivery can be sent again."),
    "unknown_branch": lazy_gettext("Choose a branch of the list."),
}


def _refusal(error: DomainError) -> str:
    message = REFUSALS.get(error.code)
    return str(message) if message else _("Not saved: check the values.")


def _branches() -> list[Branch]:
    return list(db.session.scalars(select(Branch).order_by(Branch.code)))


def _branch_of(form) -> Branch | None:
    raw = (form.get("branch") or "").strip()
    if not raw:
        return None
    branch = db.session.scalar(select(Branch).where(Branch.code == raw[:16]))
    if branch is None:
        raise DomainError("unknown branch", "unknown_branch")
    return branch


def _form_values(form) -> dict:
    return {
        "name": (form.get("name") or "")[:200],
        "url": (form.get("url") or "")[:1000],
        "events": [e for e in form.getlist("events") if e in EVENTS],
        "branch": (form.get("branch") or "")[:16],
        "active": form.get("active") == "1",
    }


def _no_store(response, status: int = 200):
    response = current_app.make_response(response)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"  # a secret may be on the page
    return response


def _list_page(*, error=None, form=None, secret=None, created=None, status=200):
    endpoints = list(db.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))
    return _no_store(
        render_template(
            "admin/webhooks.html",
            endpoints=endpoints,
            branches=_branches(),
            events=[(e, EVENT_NAMES[e]) for e in EVENTS],
            event_names=EVENT_NAMES,
            error=error,
            form=form or {"events": [], "active": True},
            secret=secret,
            created=created,
        ),
        status,
    )


def _endpoint_or_404(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id < 2**31 else None
    if endpoint is None:
        abort(page_error(404, _("There is no such webhook.")))
    return endpoint


def _edit_page(endpoint, *, error=None, form=None, secret=None, status=200):
    values = form or {
        "name": endpoint.name,
        "url": endpoint.url,
        "events": list(endpoint.events or ()),
        "branch": endpoint.branch.code if endpoint.branch else "",
        "active": endpoint.active,
    }
    return _no_store(
        render_template(
            "admin/webhook_edit.html",
            endpoint=endpoint,
            branches=_branches(),
            events=[(e, EVENT_NAMES[e]) for e in EVENTS],
            error=error,
            form=values,
            secret=secret,
        ),
        status,
    )


@bp.get("/webhooks")
@roles_required(Role.ADMIN)
def webhooks_page():
    return _list_page()


@bp.post("/webhooks")
@roles_required(Role.ADMIN)
def create_webhook():
    form = _form_values(request.form)
    try:
        endpoint, secret = webhooks.create_endpoint(
            url=form["url"],
            events=form["events"],
            name=form["name"],
            branch=_branch_of(request.form),
            now=utcnow(),
        )
    except DomainError as error:
        db.session.rollback()
        return _list_page(error=_refusal(error), form=form, status=422)
    db.session.commit()
    # the secret is shown on this answer only: never stored in the session or a flash message
    return _list_page(secret=secret, created=endpoint, status=201)


@bp.get("/webhooks/<int:endpoint_id>")
@roles_required(Role.ADMIN)
def edit_webhook(endpoint_id: int):
    return _edit_page(_endpoint_or_404(endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>")
@roles_required(Role.ADMIN)
def update_webhook(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    form = _form_values(request.form)
    try:
        webhooks.update_endpoint(
            endpoint,
            url=form["url"],
            events=form["events"],
            name=form["name"],
            active=form["active"],
            branch=_branch_of(request.form),
            now=utcnow(),
        )
    except DomainError as error:
        db.session.rollback()
        return _edit_page(endpoint, error=_refusal(error), form=form, status=422)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("admin.webhooks_page"))


@bp.post("/webhooks/<int:endpoint_id>/secret")
@roles_required(Role.ADMIN)
def rotate_webhook_secret(endpoint_id: int):
    endpoint = _endpoint_or_404(endpoint_id)
    secret = webhooks.rotate_secret(endpoint, now=utcnow())
    db.session.commit()
    return _edit_page(endpoint, secret=secret)


def _filters(args) -> dict:
    status = args.get("status", "")
    event = args.get("event", "")
    webhook = args.get("webhook", "")
    before = args.get("before", "")
    return {
        "status": status if status in {s.value for s in DeliveryStatus} else "",
        "event": event if event in EVENTS else "",
        "webhook": int(webhook) if webhook.isdigit() and len(webhook) < 10 else None,
        "before": int(before) if before.isdigit() and len(before) < 19 else None,
    }


@bp.get("/webhooks/deliveries")
@roles_required(Role.ADMIN)
def webhook_deliveries():
    filters = _filters(request.args)
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(PAGE_SIZE + 1)
    if filters["status"]:
        query = query.where(WebhookDelivery.status == DeliveryStatus(filters["status"]))
    if filters["event"]:
        query = query.where(WebhookDelivery.event == filters["event"])
    if filters["webhook"] is not None:
        query = query.where(WebhookDelivery.endpoint_id == filters["webhook"])
    if filters["before"] is not None:
        query = query.where(WebhookDelivery.id < filters["before"])
    rows = list(db.session.scalars(query))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return _no_store(
        render_template(
            "admin/webhook_deliveries.html",
            rows=rows,
            filters=filters,
            more=more,
            next_before=rows[-1].id if more and rows else None,
            events=[(e, EVENT_NAMES[e]) for e in EVENTS],
            statuses=[(s.value, STATUS_NAMES[s]) for s in DeliveryStatus],
            event_names=EVENT_NAMES,
            status_names={s.value: STATUS_NAMES[s] for s in DeliveryStatus},
        )
    )


@bp.post("/webhooks/deliveries/<int:delivery_id>/replay")
@roles_required(Role.ADMIN)
def replay_webhook_delivery(delivery_id: int):
    delivery = db.session.get(WebhookDelivery, delivery_id) if 0 < delivery_id < 2**62 else None
    if delivery is None:
        abort(page_error(404, _("There is no such delivery.")))
    try:
        webhooks.replay(delivery, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        abort(page_error(error.status, _refusal(error)))
    db.session.commit()
    flash(_("The delivery will be sent again within a minute."), "success")
    return redirect(url_for("admin.webhook_deliveries", status="pending"))
