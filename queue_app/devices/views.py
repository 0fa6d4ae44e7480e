"""Device pages of their own: the pairing status a waiting screen polls, and a page that
says what a device is (for whoever installs it)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request, url_for

from ..core.types import utcnow
from .models import DeviceKind
from .services import DeviceState, device_state, format_code
from .web import current_device, device_required, seen

bp = Blueprint("devices", __name__, url_prefix="/devices")

# the page each kind of device shows once paired (built by the kiosk and display blueprints)
SURFACES = {
    DeviceKind.KIOSK: "kiosk.index",
    DeviceKind.DISPLAY: "display.index",
    DeviceKind.FEEDBACK: "feedback_tablet.index",
}


def _kind(value: str | None) -> DeviceKind | None:
    try:
        return DeviceKind(value)
    except ValueError:
        return None


def _json_error(status: int, code: str, message: str):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    return response


@bp.get("/status")
def status():
    """Polled every few seconds by the pairing screen (and usable as a heartbeat by device
    pages): the state of this browser's device of `kind`. Never registers anything."""
    kind = _kind(request.args.get("kind"))
    if kind is None:
        return _json_error(400, "bad_kind", "give ?kind=kiosk, ?kind=display or ?kind=feedback")
    now = utcnow()
    device = current_device(kind)
    if device is None:
        body = {"kind": kind.value, "state": "unregistered"}
    else:
        seen(device, now)
        state = device_state(device, now)
        body = {"kind": kind.value, "state": state}
        if state == DeviceState.PENDING:
            body["code"] = format_code(device.pairing_code)
            body["expires_at"] = device.pairing_expires_at.isoformat()
        elif state == DeviceState.PAIRED:
            body["branch"] = device.branch.code
            body["name"] = device.name
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def _surface_url(kind: DeviceKind) -> str | None:
    from flask import current_app

    endpoint = SURFACES[kind]
    return url_for(endpoint) if endpoint in current_app.view_functions else None


def _device_page(kind: DeviceKind):
    @device_required(kind)
    def page():
        return render_template(
            "devices/paired.html", device=g.device, surface_url=_surface_url(kind)
        )

    return page()


@bp.get("/kiosk/")
def kiosk():
    """What this kiosk is: its pairing screen until paired, then its name and branch."""
    return _device_page(DeviceKind.KIOSK)


@bp.get("/display/")
def display():
    """What this lobby display is: its pairing screen until paired, then its name and branch."""
    return _device_page(DeviceKind.DISPLAY)
