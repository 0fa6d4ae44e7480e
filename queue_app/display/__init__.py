"""The lobby display (`/display/`): a paired TV calls tickets aloud and shows the queues."""

from flask import Blueprint

bp = Blueprint("display", __name__, url_prefix="/display")

from . import views  # noqa: E402,F401
