"""The report page `/reports/?branch=&period=&date=` and its exports `/reports/report.csv`
and `/reports/report.xlsx` (same query). A thin view over `reports/queries.py`."""

from __future__ import annotations

from flask import Response, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _

from ..auth.access import roles_required
from ..branches.models import network_day
from ..core.types import utcnow
from ..extensions import db
from ..reports import export, queries
from ..reports.stats import Summary
from . import bp
from .common import (
    HOURS_BOX,
    PAGE_ROLES,
    SERIES_BOX,
    bad_request,
    bar_chart,
    locale,
    minutes,
    parse_day,
    percent,
    scope,
)


def _period_names():
    return {"day": _("Day"), "week": _("Week"), "month": _("Month")}


def _dimension_titles():
    return {
        "branch": _("Branches"),
        "service": _("Services"),
        "counter": _("Counters"),
        "staff": _("Staff"),
    }


def group_name(kind: str, group, network: bool = True) -> str:
    """A group's name in the page's language."""
    if kind == "total":
        return _("All tickets")
    if group.item is None:
        return _("Not called at a counter")
    item = group.item
    if kind == "branch":
        return f"{item.code} · {item.name}"
    if kind == "service":
        name = item.display_name(locale())
    elif kind == "counter":
        name = item.name
    else:
        return item.display_name
    return f"{item.branch.code} · {name}" if network else name


def _cells(s: Summary) -> dict:
    return {
        "issued": s.issued,
        "served": s.served,
        "abandoned": s.abandoned,
        "no_show": s.no_show,
        "wait_mean": minutes(s.wait_mean_s),
        "wait_median": minutes(s.wait_median_s),
        "wait_p90": minutes(s.wait_p90_s),
        "service_mean": minutes(s.service_mean_s),
        "service_median": minutes(s.service_median_s),
        "service_p90": minutes(s.service_p90_s),
        "abandonment": percent(s.abandonment_rate),
        "no_show_rate": percent(s.no_show_rate),
        "within": percent(s.within_target),
    }


def _heat(report: queries.Report) -> dict:
    """The heat map's rows (local weekdays) over the hours that had arrivals."""
    hours = [h for h in range(24) if any(day[h].arrivals for day in report.heat)]
    first, last = (hours[0], hours[-1]) if hours else (8, 15)
    peak = report.peak_arrivals or 1
    names = [
        _("Monday"),
        _("Tuesday"),
        _("Wednesday"),
        _("Thursday"),
        _("Friday"),
        _("Saturday"),
        _("Sunday"),
    ]
    rows = []
    for day in report.heat:
        cells = []
        for cell in day[first : last + 1]:
            level = 0 if not cell.arrivals else min(5, 1 + int(5 * cell.arrivals / (peak + 1)))
            cells.append(
                {
                    "arrivals": cell.arrivals,
                    "wait": minutes(cell.wait_mean_s),
                    "level": level,
                    "title": _(
                        "%(day)s %(hour)02d:00: %(n)d arrivals, mean wait %(wait)s",
                        day=names[day[0].weekday],
                        hour=cell.hour,
                        n=cell.arrivals,
                        wait=minutes(cell.wait_mean_s),
                    ),
                }
            )
        rows.append({"name": names[day[0].weekday], "cells": cells})
    return {"hours": list(range(first, last + 1)), "rows": rows}


def _read_query():
    code = request.args.get("branch", "").strip()
    branches, branch, network, readable = scope(code)
    period = request.args.get("period", "week").strip() or "week"
    if period not in queries.PERIODS:
        bad_request(_("Choose a period: day, week or month."))
    day = parse_day("date", network_day(branches, utcnow()))
    return branches, branch, network, readable, period, day


def _point_label(point: queries.Point, period: str) -> str:
    if period == "day":
        return point.label
    return format_date(point.key, "d MMM" if period == "month" else "EEE d MMM")


@bp.get("/")
@roles_required(*PAGE_ROLES)
def report():
    branches, branch, network, readable, period, day = _read_query()
    data = queries.report(branches, period, day)
    db.session.commit()  # the figures of a closed period read for the first time, stored
    many = branch is None and len(branches) > 1
    series = [
        {"label": _point_label(p, period), **_cells(p.summary), "summary": p.summary}
        for p in data.series
    ]
    box = HOURS_BOX if period == "day" else SERIES_BOX
    issued_chart = bar_chart(
        [{"label": s["label"], "value": s["issued"], "text": str(s["issued"])} for s in series],
        box,
    )
    wait_chart = bar_chart(
        [
            {
                "label": s["label"],
                "value": None
                if s["summary"].wait_mean_s is None
                else round(s["summary"].wait_mean_s / 60, 1),
                "text": s["wait_mean"],
            }
            for s in series
        ],
        box,
    )
    titles = _dimension_titles()
    tables = [
        {
            "kind": dim,
            "title": titles[dim],
            "rows": [
                {"name": group_name(dim, g, many), **_cells(g.summary)} for g in data.groups[dim]
            ],
        }
        for dim in queries.DIMENSIONS
        if dim != "branch" or many
    ]
    args = {"branch": branch.code if branch else "", "period": period, "date": day.isoformat()}
    return render_template(
        "reports/report.html",
        branch=branch,
        branches=readable,
        network=network,
        many=many,
        period=period,
        periods=_period_names(),
        day=day,
        report=data,
        range_text=_(
            "%(start)s to %(end)s",
            start=format_date(data.start, "medium"),
            end=format_date(data.end, "medium"),
        ),
        total=_cells(data.total),
        series=series,
        series_title=_("By hour of issue") if period == "day" else _("By business day"),
        issued_chart=issued_chart,
        wait_chart=wait_chart,
        tables=tables,
        heat=_heat(data),
        csv_url=url_for("report_pages.report_csv", **args),
        xlsx_url=url_for("report_pages.report_xlsx", **args),
        staffing_url=url_for("report_pages.staffing", branch=branch.code) if branch else None,
    )


def _filename(branch, report: queries.Report, ext: str) -> str:
    who = branch.code if branch is not None else "network"
    return f"report-{who}-{report.label}.{ext}"


def _attachment(body: bytes, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _short_weekdays() -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


def _export_names(branches, branch):
    many = branch is None and len(branches) > 1

    def name_of(kind, group):
        return group_name(kind, group, many)

    return name_of


@bp.get("/report.csv")
@roles_required(*PAGE_ROLES)
def report_csv():
    branches, branch, _network, _readable, period, day = _read_query()
    data = queries.report(branches, period, day)
    db.session.commit()  # the figures of a closed period read for the first time, stored
    body = export.to_csv(data, _export_names(branches, branch), _short_weekdays())
    return _attachment(body, "text/csv; charset=utf-8", _filename(branch, data, "csv"))


@bp.get("/report.xlsx")
@roles_required(*PAGE_ROLES)
def report_xlsx():
    branches, branch, _network, _readable, period, day = _read_query()
    data = queries.report(branches, period, day)
    db.session.commit()  # the figures of a closed period read for the first time, stored
    body = export.to_xlsx(data, _export_names(branches, branch), _short_weekdays())
    return _attachment(
        body,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _filename(branch, data, "xlsx"),
    )
