"""The live dashboard (`/dashboard/`): the network overview and a branch's view for branch
managers (their branches), CX agents, executives and admins; live over Socket.IO (the
`dashboard` audience of `realtime/`), the figures from `dashboard/queries.py`, the open
alerts from `alerts/`."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

from . import views  # noqa: E402, F401
