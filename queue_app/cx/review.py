"""The weekly management review (`/cx/review`), and its CSV and PDF exports.

    /cx/review?week=2026-W48&branch=JKT01&by=cause
    /cx/review.csv?week=2026-W48&branch=JKT01
    /cx/review.pdf?week=2026-W48&branch=JKT01

`week` is an ISO week (default: the last complete week in the zone of the first branch
shown); `branch` a branch code (default: every branch the person may see); `by` the grouping
of the page's main Pareto chart (cause, category, branch, service). The figures come from
`cases.review.weekly_review`; this module only labels, draws and formats them.

CSV: UTF-8 with a byte-order mark (so Excel reads it as UTF-8), comma separated, one header
row, long format: every figure is one row `section,dimension,rank,key,label,metric,value`.
Numbers use a dot and one decimal for percentages and scores; labels are in the page's
language; text cells starting with = + - @ get a leading apostrophe (no formula injection).

PDF: A4 landscape, drawn by WeasyPrint from `templates/cx/review_pdf.html` (no external
resources are fetched), in the branch's language when one branch is chosen (else the page's),
or the `lang` of the link when it names one.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.numbers import format_decimal
from flask import abort, current_app, g, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import CX_ROLES
from ..auth.access import forbidden, page_error, roles_required
from ..branches.models import Branch
from ..cases.queries import visible_branches
from ..cases.review import (
    AGE_BUCKETS,
    DIMENSIONS,
    UNCLASSIFIED,
    BadWeek,
    Pareto,
    Review,
    iso_week_label,
    parse_iso_week,
    week_of,
    weekly_review,
)
from ..core.types import utcnow
from ..extensions import db
from ..feedback.metrics import display
from . import bp, charts
from .cases import ROOT_CAUSE_NAMES, reason_name

AGE_LABELS = {
    "lt24": _l("under 24 h"),
    "24to48": _l("24-48 h"),
    "48to72": _l("48-72 h"),
    "ge72": _l("72 h or more"),
}
DIMENSION_LABELS = {
    "cause": _l("Root cause and reason"),
    "category": _l("5P category"),
    "branch": _l("Branch"),
    "service": _l("Service"),
    "reason": _l("Customers' reasons"),
}


# --- input and the one service call --------------------------------------------------------


def _sla_hours() -> int:
    return int(current_app.config.get("REVIEW_SLA_HOURS", 48))


def _load() -> tuple[Review, Branch | None, str, list[Branch]]:
    """Parse the query, check access, compute the review. Bad input: a 4xx page.

    Who sees which branches is the case pages' rule (`cases.queries.visible_branches`):
    branch managers their own branches, the other CX roles the whole network."""
    visible = visible_branches(current_user)
    code = (request.args.get("branch") or "").strip().upper()[:20]
    chosen = None
    branches = visible
    if code:
        chosen = db.session.scalar(select(Branch).where(Branch.code == code))
        if chosen is None or not chosen.active:
            abort(page_error(404, _("There is no such branch.")))
        if all(b.id != chosen.id for b in visible):
            forbidden(_("Your account has no access to branch %(code)s.", code=chosen.code))
        g.branch_locale = chosen.locale
        branches = [chosen]
    now = utcnow()
    week = request.args.get("week", "").strip()
    if week:
        try:
            week_start = parse_iso_week(week)
        except BadWeek:
            abort(page_error(422, _("Give the week as year and week number, e.g. 2026-W48.")))
    else:
        week_start = week_of(now, branches) - timedelta(days=7)
    by = request.args.get("by", "cause")
    if by not in DIMENSIONS:
        by = "cause"
    review = weekly_review(branches, week_start, now=now, sla_hours=_sla_hours())
    return review, chosen, by, visible


# --- labels and numbers -----------------------------------------------------------------------


def _locale() -> str:
    locale = get_locale()
    return str(locale) if locale else current_app.config["BABEL_DEFAULT_LOCALE"]


def label(review: Review, dimension: str, key: str) -> str:
    """What a Pareto group is called, in the current language."""
    if key == UNCLASSIFIED:
        return _("Not classified yet")
    if dimension == "cause":
        cause, _sep, reason = key.partition(":")
        cause_name = str(ROOT_CAUSE_NAMES.get(cause, cause))
        return cause_name if reason in ("", "-") else f"{cause_name} · {reason_name(reason)}"
    if dimension == "category":
        return str(ROOT_CAUSE_NAMES.get(key, key))
    if dimension == "branch":
        branch = next((b for b in review.branches if b.code == key), None)
        return f"{key} · {branch.name}" if branch else key
    if dimension == "service":
        names = review.service_names.get(key) or {}
        return names.get(_locale()) or review.service_fallback.get(key) or key
    return reason_name(key)


def number(value: float | None, decimals: int = 1) -> str:
    """A percentage or score as shown: one decimal in the page's language, a dash for none."""
    shown = display(value, decimals)
    if shown is None:
        return "\u2013"
    pattern = "#,##0." + "0" * decimals if decimals else "#,##0"
    return format_decimal(shown, format=pattern, locale=_locale())


def when(moment, review: Review) -> str:
    """A moment in the branches' zone (UTC when they are in several), with the zone's name."""
    zones = {b.timezone for b in review.branches}
    zone = ZoneInfo(zones.pop()) if len(zones) == 1 else UTC
    local = moment.astimezone(zone)
    text = babel_format_datetime(local, "short", tzinfo=zone, locale=_locale())
    name = local.strftime("%Z")
    return f"{text} {name}" if name[:1] not in "+-" else text


def day(value) -> str:
    return format_date(value, "medium", locale=_locale())


# --- the chart -------------------------------------------------------------------------------

CHART_W, CHART_H = 720, 320
PAD_L, PAD_R, PAD_T, PAD_B = 48, 52, 18, 58  # the legend sits under the ranks


def _nice_max(value: int) -> tuple[int, int]:
    """An axis maximum >= value and its tick step (1, 2 or 5 times a power of ten)."""
    if value <= 5:
        return max(value, 1), 1
    raw = value / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return int(math.ceil(value / step) * step), int(step)


def chart(pareto: Pareto) -> dict | None:
    """Geometry of a Pareto chart (bars: counts, left axis; line: cumulative %, right axis;
    a dashed reference line at 80 %), in the SVG's own units."""
    if not pareto.rows:
        return None
    plot_w = CHART_W - PAD_L - PAD_R
    plot_h = CHART_H - PAD_T - PAD_B
    top, step = _nice_max(max(r.count for r in pareto.rows))
    slot = plot_w / len(pareto.rows)
    bar_w = slot * 0.62
    bottom = PAD_T + plot_h

    def y_count(n: float) -> float:
        return bottom - plot_h * n / top

    def y_pct(p: float) -> float:
        return bottom - plot_h * p / 100

    bars, points = [], []
    for i, row in enumerate(pareto.rows):
        cx = PAD_L + slot * (i + 0.5)
        y = y_count(row.count)
        bars.append(
            {
                "x": round(cx - bar_w / 2, 1),
                "y": round(y, 1),
                "w": round(bar_w, 1),
                "h": round(bottom - y, 1),
                "cx": round(cx, 1),
                "rank": row.rank,
                "count": row.count,
                # the count inside a bar tall enough, else on top of it
                "inside": bottom - y >= 24,
            }
        )
        points.append((round(cx, 1), round(y_pct(row.cumulative_percent), 1)))
    return {
        "w": CHART_W,
        "h": CHART_H,
        "left": PAD_L,
        "right": CHART_W - PAD_R,
        "top": PAD_T,
        "bottom": bottom,
        "bars": bars,
        "line": " ".join(f"{x},{y}" for x, y in points),
        "points": points,
        "count_ticks": [(n, round(y_count(n), 1)) for n in range(0, top + 1, step)],
        "pct_ticks": [(p, round(y_pct(p), 1)) for p in (0, 20, 40, 60, 80, 100)],
        "ref_y": round(y_pct(80), 1),
        "legend_y": CHART_H - 8,
    }


TREND_BOX = charts.Box(width=720, height=260, left=44, right=12, top=12, bottom=58)
# the three lines: what they show, how they look (colour and dash, so they differ in print too)
TREND_SERIES = (
    ("nps", _l("NPS"), "#0b5cad", ""),
    ("csat", _l("CSAT"), "#17632a", "7 4"),
    ("ces", _l("CES"), "#c46a00", "2 3"),
)


def trend_chart(review: Review) -> dict:
    """NPS, CSAT% and CES per week on one -100..100 scale (`cx/charts.py`), one line each."""
    series = []
    for key, name, colour, dash in TREND_SERIES:
        points = [
            {"label": week.label[-3:], "value": getattr(week, key).score} for week in review.trend
        ]
        line = charts.trend(points, TREND_BOX)
        series.append({"key": key, "name": name, "colour": colour, "dash": dash, **line})
    first = series[0]
    return {
        "box": TREND_BOX,
        "grid": first["grid"],
        "labels": first["labels"],
        "label_y": first["label_y"],
        "legend_y": TREND_BOX.height - 8,
        "series": series,
    }


# --- pages -------------------------------------------------------------------------------------


def _week_links(review: Review, branch: Branch | None, by: str) -> dict:
    def link(endpoint, monday, **extra):
        args = {"week": iso_week_label(monday), "by": by, **extra}
        if branch is not None:
            args["branch"] = branch.code
        return url_for(endpoint, **args)

    this_week = week_of(review.now, review.branches)
    nxt = review.week_start + timedelta(days=7)
    return {
        "prev": link("cx.review", review.week_start - timedelta(days=7)),
        "next": link("cx.review", nxt) if nxt <= this_week else None,
        "csv": link("cx.review_csv", review.week_start),
        "pdf": link("cx.review_pdf", review.week_start),
        "by": {d: link("cx.review", review.week_start, by=d) for d in DIMENSIONS},
    }


def _context(review: Review, branch: Branch | None, by: str, visible: list[Branch]) -> dict:
    return {
        "review": review,
        "branch": branch,
        "by": by,
        "dimensions": DIMENSIONS,
        "dimension_labels": DIMENSION_LABELS,
        "age_buckets": [key for _low, key in AGE_BUCKETS],
        "age_labels": AGE_LABELS,
        "label": label,
        "number": number,
        "when": when,
        "day": day,
        "reason_label": reason_name,
        "chart": chart,
        "trend_chart": trend_chart,
        "branch_choices": visible,
    }


@bp.get("/review")
@roles_required(*CX_ROLES)
def review():
    data, branch, by, visible = _load()
    context = _context(data, branch, by, visible)
    context["links"] = _week_links(data, branch, by)
    response = current_app.make_response(render_template("cx/review.html", **context))
    response.headers["Cache-Control"] = "no-store"
    return response


def _filename(review: Review, branch: Branch | None, ext: str) -> str:
    name = f"review-{review.label}" + (f"-{branch.code}" if branch else "")
    return f"{name}.{ext}"


def _attachment(body: bytes, mimetype: str, filename: str):
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- CSV -----------------------------------------------------------------------------------------

CSV_HEADER = ("section", "dimension", "rank", "key", "label", "metric", "value")


def _cell(value) -> str | int | float:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_rows(review: Review):
    """The review as long-format rows (see the module's docstring)."""
    yield ("meta", "", "", "week", _("Week"), "value", review.label)
    yield ("meta", "", "", "from", _("From"), "value", review.week_start.isoformat())
    yield ("meta", "", "", "to", _("To"), "value", review.week_end.isoformat())
    codes = " ".join(b.code for b in review.branches)
    yield ("meta", "", "", "branches", _("Branches"), "value", codes)
    yield ("meta", "", "", "as_of", _("Open cases as of"), "value", review.as_of.isoformat())
    yield ("meta", "", "", "cases", _("Cases opened"), "value", review.cases)

    def pareto_rows(section, pareto: Pareto):
        for row in pareto.rows:
            name = label(review, pareto.dimension, row.key)
            base = (section, pareto.dimension, row.rank, row.key, name)
            yield (*base, "count", row.count)
            yield (*base, "percent", display(row.percent))
            yield (*base, "cumulative_percent", display(row.cumulative_percent))
        if pareto.rest_count:
            rest = _("Other (%(num)d groups)", num=pareto.rest_groups)
            yield (section, pareto.dimension, "", "_other", rest, "count", pareto.rest_count)
        yield (section, pareto.dimension, "", "_total", _("Total"), "count", pareto.total)

    for dimension in DIMENSIONS:
        yield from pareto_rows("pain_areas", review.paretos[dimension])
    yield from pareto_rows("customer_reasons", review.reasons)
    yield (
        "customer_reasons",
        "reason",
        "",
        "_no_reason",
        _("Negative answers without a reason"),
        "count",
        review.negative_without_reason,
    )
    for row in review.levels:
        name = _("Level %(num)d", num=row.level)
        for metric in ("open", "acknowledged", "resolved", "total"):
            yield ("cases_by_level", "level", "", row.level, name, metric, getattr(row, metric))
    for row in review.ages:
        name = _("Level %(num)d", num=row.level)
        for key, count in row.buckets.items():
            yield ("open_by_age", "level", "", row.level, name, key, count)
    sla = review.sla
    sla_name = _("Followed up within %(num)d hours", num=sla.hours)
    for metric in ("met", "breached", "pending", "counted"):
        yield ("sla", "", "", "sla", sla_name, metric, getattr(sla, metric))
    yield ("sla", "", "", "sla", sla_name, "share_percent", display(sla.share))
    yield ("sla", "", "", "sla", sla_name, "hours", sla.hours)
    for week in review.trend:
        base = ("trend", "week", "", week.label, week.week_start.isoformat())
        yield (*base, "nps", display(week.nps.score))
        yield (*base, "nps_n", week.nps.n)
        yield (*base, "nps_margin", display(week.nps.margin))
        yield (*base, "csat_percent", display(week.csat.score))
        yield (*base, "csat_n", week.csat.n)
        yield (*base, "ces", display(week.ces.score))
        yield (*base, "ces_n", week.ces.n)
    for group in review.comments:
        for i, item in enumerate(group.comments, start=1):
            base = ("comments", group.reason, i, item.response_id, reason_name(group.reason))
            yield (*base, "branch", item.branch_code)
            yield (*base, "business_day", item.business_day.isoformat())
            yield (*base, "nps", item.nps)
            yield (*base, "csat", item.csat)
            yield (*base, "ces", item.ces)
            yield (*base, "comment", item.comment)


@bp.get("/review.csv")
@roles_required(*CX_ROLES)
def review_csv():
    data, branch, _by, _visible = _load()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in csv_rows(data):
        writer.writerow([_cell(v) for v in row])
    body = ("\ufeff" + out.getvalue()).encode("utf-8")
    return _attachment(body, "text/csv", _filename(data, branch, "csv"))


# --- PDF -----------------------------------------------------------------------------------------


def _no_fetch(url, *args, **kwargs):
    raise ValueError(f"the review PDF fetches nothing ({url[:60]})")


def _pdf_locale(branch: Branch | None) -> str:
    languages = tuple(current_app.config["LANGUAGES"])
    chosen = request.args.get("lang")
    if chosen in languages:
        return chosen
    if branch is not None and branch.locale in languages:
        return branch.locale
    return _locale()


@bp.get("/review.pdf")
@roles_required(*CX_ROLES)
def review_pdf():
    from weasyprint import HTML  # heavy: loaded when the first PDF is asked for

    data, branch, _by, visible = _load()
    locale = _pdf_locale(branch)
    with force_locale(locale):
        context = _context(data, branch, "cause", visible)
        context["lang"] = locale
        context["generated"] = when(data.now, data)
        html = render_template("cx/review_pdf.html", **context)
    pdf = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    return _attachment(pdf, "application/pdf", _filename(data, branch, "pdf"))
