from flask import g, make_response, render_template
from flask_babel import force_locale, gettext

from ..devices.models import DeviceKind
from ..devices.web import device_required
from ..waits.present import range_patterns
from . import bp


def speech_strings() -> dict:
    """What the page shows and says, in the branch's language (rendered server-side)."""
    return {
        "announce": gettext("Ticket number %(number)s, please go to %(counter)s"),
        "announce_recall": gettext(
            "Calling again, ticket number %(number)s, please go to %(counter)s"
        ),
        "wait_range": range_patterns(),  # "10-15 min", as the customer's phone says it
        "no_estimate": gettext("no counter open"),
        "waiting_one": gettext("1 waiting"),
        "waiting_many": gettext("%(n)s waiting"),
        "online": gettext("Live"),
        "offline": gettext("Connection lost, reconnecting…"),
        "refused": gettext("This display is no longer paired"),
        "sound_off": gettext("Sound is off: press a key or tap the screen to turn it on"),
        "recall": gettext("Called again"),
    }


@bp.get("/")
@device_required(DeviceKind.DISPLAY)
def index():
    device = g.device
    branch = device.branch
    # the lobby speaks the branch's language, whatever a visitor's browser prefers
    with force_locale(branch.locale):
        html = render_template(
            "display/index.html",
            device=device,
            branch=branch,
            lang=branch.locale,
            strings=speech_strings(),
        )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response
