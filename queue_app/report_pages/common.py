"""What the report pages share: who may see which branches, reading the query, formatting
numbers in the page's language, and chart geometry over `cx/charts.py`."""

from __future__ import annotations

import math
from datetime import date

from flask import abort, request
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..auth.access import forbidden, page_error
from ..branches.models import Branch
from ..cx import charts
from ..extensions import db
from ..feedback import metric_queries as access
from ..reports import queries

PAGE_ROLES = (Role.BRANCH_MANAGER, Role.CX_AGENT, Role.EXECUTIVE, Role.ADMIN)
SERIES_BOX = charts.Box(width=1240, height=230, left=48, right=12, top=22, bottom=34)
HOURS_BOX = charts.Box(width=1240, height=230, left=48, right=12, top=22, bottom=34)
MAX_LABELS = 16


def bad_request(message: str):
    abort(page_error(400, message))


def locale() -> str:
    return str(get_locale() or "id")


def scope(code: str, *, required: bool = False):
    """The branches a page shows: the one of `?branch=` (404 or 403 page if unknown or not
    readable), or every branch the user may read (with `required`: the first of them).
    Returns (branches shown, the branch or None, whether the user sees the whole network,
    every branch the user may read)."""
    user = current_user._get_current_object()
    readable = access.readable_branches(user)
    network = access.sees_network(user)
    if code:
        branch = next((b for b in readable if b.code == code), None)
        if branch is None:
            known = None
            if 0 < len(code) <= 64 and "\x00" not in code:
                known = db.session.scalar(select(Branch).where(Branch.code == code))
            if known is None or not known.active:
                abort(page_error(404, _("There is no such branch.")))
            forbidden(_("Your account has no access to branch %(code)s.", code=code))
        return [branch], branch, network, readable
    if not readable:
        forbidden(_("Your account has no branch whose reports you may read."))
    if required:
        return [readable[0]], readable[0], network, readable
    return readable, None, network, readable


def parse_day(name: str, default: date) -> date:
    """`?<name>=YYYY-MM-DD` (a 400 page with a message if it is not a date in 2000..2099)."""
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        day = date.fromisoformat(text)
    except ValueError:
        bad_request(_("%(value)s is not a date: write it as YYYY-MM-DD.", value=text[:20]))
    if not queries.FIRST_DAY <= day <= queries.LAST_DAY:
        bad_request(_("Choose a date between the years 2000 and 2099."))
    return day


def parse_number(name: str, default: float, low: float, high: float, message: str) -> float:
    text = request.args.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        bad_request(message)
    if not (math.isfinite(value) and low <= value <= high):
        bad_request(message)
    return value


# --- numbers in the page's language -------------------------------------------------------


def minutes(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return _("%(value)s min", value=format_decimal(seconds / 60, "#,##0.0"))


def percent(share: float | None) -> str:
    if share is None:
        return "—"
    return format_decimal(share * 100, "#,##0.0") + "%"


def number(value: float | None, pattern: str = "#,##0.#") -> str:
    return "—" if value is None else format_decimal(value, pattern)


# --- charts -------------------------------------------------------------------------------


def nice_grid(top: float) -> tuple[float, ...]:
    """0 and four or five round steps up to at least `top` (1, 2, 2.5 or 5 times a power of
    ten)."""
    if top <= 0:
        return (0, 1)
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    count = math.ceil(top / step)
    return tuple(round(i * step, 6) for i in range(count + 1))


def bar_chart(items: list[dict], box: charts.Box) -> dict:
    """Bars of non-negative values (`items`: label, value, text) on a 0..round-top scale;
    at most MAX_LABELS category labels are shown."""
    top = max((i["value"] or 0 for i in items), default=0)
    grid = nice_grid(top)
    chart = charts.bars([{**i, "n": 0, "small": False} for i in items], box, grid=grid)
    every = max(1, math.ceil(len(items) / MAX_LABELS))
    for index, bar in enumerate(chart["bars"]):
        bar["show_label"] = index % every == 0
        bar["show_text"] = len(items) <= 24
    chart["grid"] = [{**g, "text": format_decimal(g["value"], "#,##0.#")} for g in chart["grid"]]
    return chart
