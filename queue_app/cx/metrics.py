"""The CX metrics page (`/cx/metrics?branch=&from=&to=&group=`): NPS with its sample size and
margin of error, the promoter/passive/detractor split, CSAT% and CES of a branch (or of the
network, for the roles that see it) over a range of business days; the trend, NPS by wait and
by whether the quoted wait was kept (inline SVG, numbers in tables too), and a table per
touchpoint. A thin view over `feedback/metric_queries.py`.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, current_app, render_template, request
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from ..accounts.models import Role
from ..auth.access import forbidden, page_error, roles_required
from ..branches.models import Branch, network_day
from ..core.types import utcnow
from ..extensions import db
from ..feedback import metric_queries as mq
from ..feedback.metrics import Tally, display
from ..feedback.models import FeedbackChannel
from . import bp, charts

PAGE_ROLES = (Role.CX_AGENT, Role.BRANCH_MANAGER, Role.EXECUTIVE, Role.ADMIN)
# the range shown when none is asked: the 28 business days before today
DEFAULT_DAYS = 28

SIGNED = "+#,##0.0;-#,##0.0"
PLAIN = "#,##0.0"


def _channel_names():
    return {
        FeedbackChannel.TABLET: _("Tablet at the counter"),
        FeedbackChannel.QR: _("QR code on the ticket"),
        FeedbackChannel.LINK: _("Link by e-mail or SMS"),
        FeedbackChannel.API: _("Other system (API)"),
    }


def _group_names():
    return {"day": _("Day"), "week": _("Week"), "month": _("Month")}


def _quote_names():
    return {
        "kept": _("Quoted wait kept"),
        "not_kept": _("Waited longer than quoted"),
        "unknown": _("No quote"),
    }


def _signed(value: float | None) -> str:
    shown = display(value)
    return "—" if shown is None else format_decimal(shown, SIGNED)


def _percent(value: float | None) -> str:
    shown = display(value)
    return "—" if shown is None else format_decimal(shown, PLAIN) + "%"


def _margin(value: float | None) -> str | None:
    shown = display(value)
    return None if shown is None else "±" + format_decimal(shown, PLAIN)


def _scores(tally: Tally, min_n: int) -> dict:
    """What the page shows of a tally: formatted scores, n and whether n is too small."""
    nps, csat, ces = tally.nps(), tally.csat(), tally.ces()
    share = {}
    for name in ("promoters", "passives", "detractors"):
        count = getattr(nps, name)
        share[name] = {
            "count": count,
            "width": round(100 * count / nps.n, 2) if nps.n else 0,
            "text": _percent(100 * count / nps.n if nps.n else None),
        }
    return {
        "nps": _signed(nps.score),
        "nps_value": display(nps.score),
        "margin": _margin(nps.margin),
        "n": nps.n,
        "small": nps.n < min_n,
        "share": share,
        "csat": _percent(csat.score),
        "csat_n": csat.n,
        "csat_small": csat.n < min_n,
        "ces": _signed(ces.score),
        "ces_n": ces.n,
        "ces_small": ces.n < min_n,
    }


def _period_label(period: mq.Period, group: str) -> str:
    if group == "day":
        return format_date(period.start, "d MMM")
    if group == "month":
        return format_date(period.start, "MMM yyyy")
    return period.label


def _touchpoint_name(tp: mq.Touchpoint, locale: str, network: bool) -> str:
    item = tp.item
    if tp.kind == "channel":
        return _channel_names().get(tp.key, str(tp.key))
    if item is None:
        return _("Not recorded")
    if tp.kind == "branch":
        return f"{item.code} · {item.name}"
    if tp.kind == "service":
        name = item.display_name(locale)
    elif tp.kind == "counter":
        name = item.name
    else:
        return item.display_name
    return f"{item.branch.code} · {name}" if network else name


def _touchpoint_tables(report: mq.Report, min_n: int, network: bool) -> list[dict]:
    locale = str(get_locale() or "id")
    titles = {
        "branch": _("Branches"),
        "service": _("Services"),
        "counter": _("Counters"),
        "staff": _("Staff"),
        "channel": _("Channels"),
    }
    kinds = mq.TOUCHPOINT_KINDS if network else mq.TOUCHPOINT_KINDS[1:]
    return [
        {
            "kind": kind,
            "title": titles[kind],
            "rows": [
                {"name": _touchpoint_name(tp, locale, network), **_scores(tp.tally, min_n)}
                for tp in report.touchpoints[kind]
            ],
        }
        for kind in kinds
    ]


def page_context(report: mq.Report, min_n: int, network: bool) -> dict:
    """Everything the template draws, formatted in the page's language."""
    periods = [
        {"label": _period_label(p, report.group), "period": p, **_scores(p.tally, min_n)}
        for p in report.series
    ]
    trend_points = [
        {
            "label": p["label"],
            "value": p["nps_value"],
            "small": p["small"],
            "n": p["n"],
            "text": p["nps"],
        }
        for p in periods
    ]
    wait_rows = []
    for bucket in report.by_wait:
        if bucket.key == "unknown":
            label = _("Unknown")
        elif bucket.high_s is None:
            label = _("%(low)d+ min", low=bucket.low_s // 60)
        else:
            label = _("%(low)d-%(high)d min", low=bucket.low_s // 60, high=bucket.high_s // 60)
        wait_rows.append({"label": label, **_scores(bucket.tally, min_n)})
    quote_rows = [
        {"label": name, **_scores(report.by_quote[key], min_n)}
        for key, name in _quote_names().items()
    ]

    def bar_items(rows):
        return [
            {
                "label": r["label"],
                "value": r["nps_value"],
                "n": r["n"],
                "small": r["small"],
                "text": r["nps"],
            }
            for r in rows
        ]

    return {
        "total": _scores(report.total, min_n),
        "periods": periods,
        "trend": charts.trend(trend_points),
        "wait_rows": wait_rows,
        "wait_chart": charts.bars(bar_items(wait_rows)),
        "quote_rows": quote_rows,
        "quote_chart": charts.bars(bar_items(quote_rows)),
        "tables": _touchpoint_tables(report, min_n, network),
    }


def _branch_asked(code: str, readable: list[Branch]) -> Branch:
    """The branch of `?branch=`, if the user may read it; a 404 or 403 page otherwise."""
    branch = next((b for b in readable if b.code == code), None)
    if branch is not None:
        return branch
    known = None
    if 0 < len(code) <= 64 and "\x00" not in code:
        known = db.session.scalar(select(Branch).where(Branch.code == code))
    if known is None or not known.active:
        abort(page_error(404, _("There is no such branch.")))
    forbidden(_("Your account has no access to branch %(code)s.", code=code))
    raise AssertionError("unreachable")


def _parse_range(today: date) -> tuple[date, date, str, list[str]]:
    """from, to and group of the query, or the defaults with what was wrong with them."""
    errors = []
    default_start, default_end = today - timedelta(days=DEFAULT_DAYS), today - timedelta(days=1)
    start, end = default_start, default_end
    try:
        if request.args.get("from"):
            start = date.fromisoformat(request.args["from"])
        if request.args.get("to"):
            end = date.fromisoformat(request.args["to"])
        mq.check_range(start, end)
    except ValueError:
        errors.append(
            _(
                "Choose a range of at most %(days)d days whose end is not before its start.",
                days=mq.MAX_RANGE_DAYS,
            )
        )
        start, end = default_start, default_end
    group = request.args.get("group") or "day"
    if group not in mq.GROUPS:
        errors.append(_("Group by day, week or month."))
        group = "day"
    return start, end, group, errors


@bp.get("/metrics")
@roles_required(*PAGE_ROLES)
def metrics():
    user = current_user._get_current_object()
    readable = mq.readable_branches(user)
    network_allowed = mq.sees_network(user)
    code = request.args.get("branch", "").strip()
    if code:
        branch = _branch_asked(code, readable)
    elif network_allowed:
        branch = None  # the whole network
    elif readable:
        branch = readable[0]
    else:
        forbidden(_("Your account has no branch whose metrics you may read."))
    now = utcnow()
    today = branch.business_day(now) if branch is not None else network_day(readable, now)
    start, end, group, errors = _parse_range(today)
    min_n = current_app.config.get("METRICS_MIN_N", mq.DEFAULT_MIN_N)
    report = mq.report(
        [branch.id] if branch is not None else None,
        start,
        end,
        group=group,
        wait_buckets_min=current_app.config.get(
            "METRICS_WAIT_BUCKETS_MIN", mq.DEFAULT_WAIT_BUCKETS_MIN
        ),
    )
    return render_template(
        "cx/metrics.html",
        branch=branch,
        branches=readable,
        network_allowed=network_allowed,
        start=start,
        end=end,
        group=group,
        groups=_group_names(),
        errors=errors,
        min_n=min_n,
        range_text=_(
            "%(start)s to %(end)s",
            start=format_date(start, "medium"),
            end=format_date(end, "medium"),
        ),
        **page_context(report, min_n, network=branch is None),
    )
