"""The counter screen: staff open a counter, call and serve tickets, see who is coming.

Thin views over `tickets.services` (`views.py`), the page's JSON state (`state.py`), the
choices it offers and the messages it shows for refused actions (`choices.py`).
"""

from flask import Blueprint

bp = Blueprint("counter", __name__, url_prefix="/counter")

from . import views  # noqa: E402,F401
