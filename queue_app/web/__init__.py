"""The front door: a start page listing the branches, health check, language switch."""

from flask import Blueprint

from ..i18n import switch_url

bp = Blueprint("web", __name__)
bp.add_app_template_global(switch_url, "switch_url")

from . import views  # noqa: E402,F401
