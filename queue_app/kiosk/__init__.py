"""The touch kiosk of a branch (`/kiosk/`): choose a language and a service, optionally say who
you are, take a ticket with a QR code to follow it on a phone, print it on 80 mm paper.

The kiosk is a paired device (`devices.web.device_required`); its pages speak the language
chosen on its first screen (the URL carries it, so nothing sticks to the next customer) and
fall back to the branch's own language.
"""

from flask import Blueprint

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

from . import views  # noqa: E402,F401
