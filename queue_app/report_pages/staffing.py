"""The staffing advice page `/reports/staffing?branch=&date=&target=&share=&weeks=`: the
forecast of the day per service and local hour, the counters each hour needs for the target
(Erlang C, or Erlang A where customers were seen to abandon), the counters open on the same
hours before, and the day simulated with both. A thin view over `reports/staffing.py`."""

from __future__ import annotations

import math
from datetime import timedelta

from flask import current_app, render_template, request
from flask_babel import format_date
from flask_babel import gettext as _

from ..auth.access import roles_required
from ..core.types import utcnow
from ..reports import staffing as advice
from . import bp
from .common import (
    HOURS_BOX,
    PAGE_ROLES,
    bad_request,
    locale,
    minutes,
    nice_grid,
    number,
    parse_day,
    parse_number,
    percent,
    scope,
)


def _pair_chart(hours: list[advice.Hour]) -> dict:
    """Two bars per hour: counters needed and counters open in history."""
    box = HOURS_BOX
    top = max([h.needed for h in hours] + [h.history_counters for h in hours] + [1])
    grid = nice_grid(top)
    low, high = grid[0], grid[-1]
    slot = box.plot_width / max(1, len(hours))
    width = round(min(28.0, slot * 0.35), 1)
    bars = []
    for i, h in enumerate(hours):
        centre = box.left + (i + 0.5) * slot
        for offset, value, kind in ((-width, h.needed, "need"), (0.0, h.history_counters, "past")):
            y = box.y(value, low, high)
            bars.append(
                {
                    "kind": kind,
                    "x": round(centre + offset, 1),
                    "y": y,
                    "width": width,
                    "height": max(0.0, round(box.y(0, low, high) - y, 1)),
                    "text": number(value),
                    "text_x": round(centre + offset + width / 2, 1),
                }
            )
    return {
        "box": box,
        "bars": bars,
        "labels": [
            {"x": round(box.left + (i + 0.5) * slot, 1), "text": f"{h.hour:02d}:00"}
            for i, h in enumerate(hours)
        ],
        "grid": [{"value": v, "y": box.y(v, low, high), "text": number(v)} for v in grid],
        "label_y": box.height - box.bottom + 20,
    }


def _model_name(model: str) -> str:
    return _("Erlang A") if model == "erlang_a" else _("Erlang C")


@bp.get("/staffing")
@roles_required(*PAGE_ROLES)
def staffing():
    code = request.args.get("branch", "").strip()
    _branches, branch, _network, readable = scope(code, required=True)
    config = current_app.config
    tomorrow = utcnow().astimezone(branch.tz).date() + timedelta(days=1)
    day = parse_day("date", tomorrow)
    target_min = parse_number(
        "target",
        config.get("REPORTS_TARGET_WAIT_S", advice.DEFAULT_TARGET_S) / 60,
        0,
        240,
        _("The target wait is a number of minutes between 0 and 240."),
    )
    share_pct = parse_number(
        "share",
        config.get("REPORTS_TARGET_SHARE", advice.DEFAULT_SHARE) * 100,
        1,
        99,
        _("The share served within the target is a percentage between 1 and 99."),
    )
    weeks = parse_number(
        "weeks",
        config.get("REPORTS_STAFFING_WEEKS", advice.DEFAULT_WEEKS),
        1,
        advice.MAX_WEEKS,
        _("History is between 1 and %(max)d weeks.", max=advice.MAX_WEEKS),
    )
    if weeks != int(weeks):
        bad_request(_("History is between 1 and %(max)d weeks.", max=advice.MAX_WEEKS))
    try:
        plan = advice.plan(
            branch,
            day,
            weeks=int(weeks),
            target_s=round(target_min * 60),
            share=share_pct / 100,
        )
    except ValueError:
        bad_request(_("The counters needed cannot be worked out for this target."))
    simulations = advice.simulate(plan, seeds=int(config.get("REPORTS_SIM_SEEDS", 5)))
    names = {s.id: s.display_name(locale()) for s in branch.services}
    models = {m.service_id: m for m in plan.services}
    hours = [
        {
            "hour": f"{h.hour:02d}:00",
            "arrivals": number(h.arrivals),
            "needed": h.needed,
            "past": number(h.history_counters),
            "gap": h.gap,
            "gap_text": ("+" if h.gap > 0 else "") + number(h.gap),
            "needs": [
                {
                    "service": names.get(n.service_id, "?"),
                    "arrivals": number(n.arrivals),
                    "aht": minutes(models[n.service_id].aht_s),
                    "patience": "∞"
                    if math.isinf(models[n.service_id].patience_s)
                    else minutes(models[n.service_id].patience_s),
                    "model": _model_name(n.model),
                    "needed": n.needed,
                    "past": number(n.history_counters),
                    "level": percent(n.result.service_level),
                    "wait_p": percent(n.result.wait_probability),
                    "abandon": percent(n.result.abandon_probability),
                }
                for n in h.needs
            ],
        }
        for h in plan.hours
    ]
    sim_names = {
        "advised": _("Advised counters"),
        "history": _("Counters as open in history"),
    }

    def sim_row(label, s):
        return {
            "label": label,
            "arrivals": number(s.arrivals),
            "within": percent(s.within_target),
            "wait": minutes(s.wait_mean_s),
            "abandoned": percent(s.abandoned),
        }

    sims = [
        {
            "name": sim_names[s.name],
            "key": s.name,
            "counters": s.counters,
            "total": sim_row(_("Whole day"), s.total),
            "hours": [sim_row(f"{h.hour:02d}:00", h) for h in s.hours],
        }
        for s in simulations
    ]
    return render_template(
        "reports/staffing.html",
        branch=branch,
        branches=readable,
        day=day,
        day_text=format_date(day, "full"),
        target=number(target_min),
        share=number(share_pct),
        weeks=int(weeks),
        plan=plan,
        hours=hours,
        chart=_pair_chart(plan.hours),
        used=[format_date(d, "medium") for d in plan.days_used],
        skipped=[format_date(d, "medium") for d in plan.history_days if d not in plan.days_used],
        simulations=sims,
        seeds=int(config.get("REPORTS_SIM_SEEDS", 5)),
    )
