"""Pairing and revoking kiosks, lobby displays and feedback tablets (admins, and managers for
their branches). A feedback tablet is paired with one counter of its branch."""

from __future__ import annotations

from datetime import UTC
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_format_datetime
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..accounts.models import Role
from ..auth.access import page_error, roles_required
from ..branches.models import Branch
from ..core.errors import DomainError
from ..core.types import utcnow
from ..devices.models import Device, DeviceKind
from ..devices.services import (
    PAIRING_LENGTH,
    can_manage_devices,
    device_state,
    devices_for,
    manageable_branches,
    pair_device,
    revoke_device,
)
from ..extensions import db, limiter
from . import bp

MANAGERS = (Role.ADMIN, Role.BRANCH_MANAGER)


def _pair_limit() -> str:
    return current_app.config["PAIRING_RATE_LIMIT"]


def _messages():
    """What a person reads for each refusal of the device services (their codes)."""
    return {
        "bad_code": _(
            "A pairing code has %(num)d letters and digits, as the device shows it.",
            num=PAIRING_LENGTH,
        ),
        "unknown_pairing_code": _(
            "No device shows this pairing code. Check the code on the device's screen."
        ),
        "expired": _("This pairing code has expired. The device shows a new one: enter that code."),
        "already_paired": _("This device is paired already."),
        "bad_name": _("Give the device a name of 1 to 80 characters."),
        "counter_required": _("This device is a feedback tablet: choose the counter it stands at."),
        "wrong_counter": _(
            "That counter is not in the chosen branch. Choose a counter of the device's branch."
        ),
        "forbidden": _("You may not manage the devices of this branch."),
    }


def _kind_names():
    return {
        DeviceKind.KIOSK: _("Ticket kiosk"),
        DeviceKind.DISPLAY: _("Lobby display"),
        DeviceKind.FEEDBACK: _("Feedback tablet"),
    }


def _state_names():
    return {
        "pending": _("Waiting for pairing"),
        "expired": _("Code expired"),
        "paired": _("Paired"),
        "revoked": _("Revoked"),
    }


def _when(moment, branch: Branch | None) -> str | None:
    """`moment` in the branch's own time zone (UTC for a device without a branch)."""
    if moment is None:
        return None
    zone = ZoneInfo(branch.timezone) if branch is not None else UTC
    local = moment.astimezone(zone)
    label = local.strftime("%Z")
    text = babel_format_datetime(local, "short", tzinfo=zone, locale=get_locale())
    return f"{text} {label}" if label[:1] not in "+-" else text


def _rows(now):
    kinds, states = _kind_names(), _state_names()
    rows = []
    for device in devices_for(current_user, now=now):
        state = device_state(device, now)
        rows.append(
            {
                "id": device.id,
                "kind": kinds[device.kind],
                "name": device.name,
                "branch": device.branch,
                "counter": device.counter if device.kind == DeviceKind.FEEDBACK else None,
                "state": state,
                "state_name": states[state],
                "last_seen": _when(device.last_seen_at, device.branch),
                "revocable": state != "revoked"
                and (
                    can_manage_devices(current_user, device.branch)
                    if device.branch is not None
                    else current_user.role == Role.ADMIN
                ),
            }
        )
    return rows


def _page(*, status=200, error=None, form=None):
    now = utcnow()
    branches = manageable_branches(current_user)
    response = current_app.make_response(
        render_template(
            "admin/devices.html",
            rows=_rows(now),
            branches=branches,
            error=error,
            form=form or {},
            code_length=PAIRING_LENGTH,
        )
    )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/devices")
@roles_required(*MANAGERS)
def devices():
    return _page()


def _too_many_pairings(_limit):
    return _page(status=429, error=_("Too many pairing attempts. Wait a minute and try again."))


@bp.post("/devices/pair")
@roles_required(*MANAGERS)
@limiter.limit(_pair_limit, on_breach=_too_many_pairings)
def pair():
    form = {
        "code": request.form.get("code", "")[:40],
        "name": request.form.get("name", "")[:200],
        "branch": request.form.get("branch", "")[:20],
        # feedback tablets only: the counter the tablet stands at ("" for other kinds)
        "counter": request.form.get("counter", "")[:20],
    }
    branch = None
    if form["branch"].isdigit():
        branch = db.session.get(Branch, int(form["branch"]))
    if branch is None or not branch.active:
        return _page(status=422, error=_("Choose the branch of the device."), form=form)
    try:
        device = pair_device(
            form["code"],
            branch,
            current_user,
            name=form["name"],
            now=utcnow(),
            counter_id=int(form["counter"]) if form["counter"].isdigit() else None,
        )
    except DomainError as error:
        db.session.rollback()
        message = _messages().get(error.code, _("The device could not be paired."))
        return _page(status=error.status, error=message, form=form)
    db.session.commit()
    flash(
        _(
            "%(kind)s “%(name)s” is paired with %(branch)s. It shows its page within a few "
            "seconds.",
            kind=_kind_names()[device.kind],
            name=device.name,
            branch=branch.name,
        ),
        "success",
    )
    return redirect(url_for("admin.devices"))


@bp.post("/devices/<int:device_id>/revoke")
@roles_required(*MANAGERS)
def revoke(device_id: int):
    device = db.session.get(Device, device_id)
    if device is None:
        abort(page_error(404, _("There is no such device.")))
    try:
        revoke_device(device, current_user, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        message = _messages().get(error.code, _("The device could not be revoked."))
        return _page(status=error.status, error=message)
    db.session.commit()
    flash(
        _("“%(name)s” is revoked: it shows the pairing screen again.", name=device.name or "—"),
        "success",
    )
    return redirect(url_for("admin.devices"))
