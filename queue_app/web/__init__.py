"""The front door: a start page listing the branches, health check, language switch."""

from flask import Blueprint

bp = Blueprint("web", __name__)

from . import views  # noqa: E402,F401
