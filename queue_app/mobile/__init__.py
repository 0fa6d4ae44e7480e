"""The customer's phone pages: follow a ticket, a branch's page, joining its queue remotely."""

from flask import Blueprint

bp = Blueprint("mobile", __name__)

from . import branch, join, track  # noqa: E402,F401
