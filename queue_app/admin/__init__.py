"""Admin pages: devices today; branch settings and people later."""

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import alerts, settings, views, webhooks  # noqa: E402,F401
