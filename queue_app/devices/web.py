"""How a kiosk or display page knows which device it runs on.

A page decorated with `device_required(kind)` reads the device token from its cookie. A browser
without a valid token registers as a new device and sees the pairing screen with its code; a
device waiting to be paired keeps seeing it (it polls `/devices/status` and reloads once
paired); a paired device gets `g.device` (and its branch's language as the page default) and
the page. `?device_token=` on any device page installs a token handed out ahead of time (the
demo devices, provisioning scripts) and redirects to the clean URL, so the token does not stay
in the address bar or the history.
"""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from flask import current_app, g, jsonify, make_response, redirect, render_template, request
from flask_babel import force_locale, gettext

from ..core.types import utcnow
from ..extensions import db
from .models import Device, DeviceKind
from .services import (
    DeviceState,
    device_for_token,
    device_state,
    format_code,
    register_device,
    renew_pairing_code,
    touch_device,
)

COOKIE_MAX_AGE = 10 * 365 * 24 * 3600


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated later, in every language at once."""
    return message


def cookie_name(kind: DeviceKind) -> str:
    return f"qa_device_{kind.value}"


def _set_cookie(response, kind: DeviceKind, token: str):
    response.set_cookie(
        cookie_name(kind),
        token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


def current_device(kind: DeviceKind) -> Device | None:
    """The paired or pending device of this request's cookie, if it is of `kind`."""
    device = device_for_token(request.cookies.get(cookie_name(kind)))
    return device if device is not None and device.kind == kind else None


def seen(device: Device, now=None) -> None:
    """Record a sign of life of `device` (at most once a minute) and commit it."""
    if touch_device(device, now=now or utcnow()):
        db.session.commit()


def _install_handed_token(kind: DeviceKind):
    """`?device_token=...`: keep the token in the cookie (when it is a device of this kind)
    and come back to the same page without it."""
    handed = request.args.get("device_token", "")
    device = device_for_token(handed)
    args_left = [(k, v) for k, vs in request.args.lists() if k != "device_token" for v in vs]
    # request.path is always a path of this site: no open redirect
    response = redirect(request.path + (("?" + urlencode(args_left)) if args_left else ""))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    if device is not None and device.kind == kind:
        _set_cookie(response, kind, handed)
    return response


def both_languages(*messages: str) -> dict[str, list[str]]:
    """`messages` translated into every language of the app, for screens that nobody has
    chosen a language on yet (the pairing screen speaks all of them at once)."""
    texts = {}
    for language in current_app.config["LANGUAGES"]:
        with force_locale(language):
            texts[language] = [gettext(m) for m in messages]
    return texts


def pairing_screen(device: Device, kind: DeviceKind, token: str | None = None):
    from flask_babel import get_locale

    current = get_locale().language if get_locale() else current_app.config["BABEL_DEFAULT_LOCALE"]
    kind_names = {
        DeviceKind.KIOSK: N_("Ticket kiosk"),
        DeviceKind.DISPLAY: N_("Lobby display"),
        DeviceKind.FEEDBACK: N_("Feedback tablet"),
    }
    texts = both_languages(
        N_("Pair this device"),
        kind_names[kind],
        N_(
            "Sign in as an admin or branch manager on another computer, open Devices and "
            "enter this code with the branch and a name for the device."
        ),
        N_("Waiting to be paired…"),
    )
    # the page's own language first, the others after it
    order = [current] + [lang for lang in texts if lang != current]
    response = make_response(
        render_template(
            "devices/pairing.html",
            device=device,
            kind=kind,
            code=format_code(device.pairing_code),
            texts=[(lang, texts[lang]) for lang in order],
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return _set_cookie(response, kind, token) if token else response


def _not_paired_json(device: Device | None, now):
    state = device_state(device, now) if device is not None else "unregistered"
    response = jsonify(
        error={
            "code": "device_not_paired",
            "message": "this device is not paired with a branch; open its page to see the code",
            "state": state,
        }
    )
    response.status_code = 403
    return response


def device_required(kind: DeviceKind, *, json: bool = False):
    """The view runs only on a paired device of `kind` (`g.device`).

    Other browsers get the pairing screen (a new device registers itself and keeps its token
    in a cookie). With `json=True` (endpoints fetched by a device page) they get a 403 JSON
    error instead, and nothing is registered."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if "device_token" in request.args and request.method in ("GET", "HEAD"):
                return _install_handed_token(kind)
            now = utcnow()
            device = current_device(kind)
            if json:
                if device is None or not device.is_paired:
                    return _not_paired_json(device, now)
            else:
                token = None
                if device is None:
                    device, token = register_device(kind, now=now)
                    device.last_seen_at = now
                    db.session.commit()
                if not device.is_paired:
                    if device_state(device, now) == DeviceState.EXPIRED:
                        renew_pairing_code(device, now=now)
                        touch_device(device, now=now)
                        db.session.commit()
                    else:
                        seen(device, now)
                    return pairing_screen(device, kind, token)
            seen(device, now)
            g.device = device
            # the kiosk or display speaks its branch's language unless someone chose another
            g.branch_locale = device.branch.locale
            return view(*args, **kwargs)

        return wrapper

    return decorator
