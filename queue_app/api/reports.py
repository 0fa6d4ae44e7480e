"""Reports (tickets, waits, service times, abandonment and no-show rates, share within the
target wait per day, week or month and per branch, service, counter and staff member; the
hour-of-week heat map) and staffing advice (counters needed per hour by Erlang C / Erlang A)."""

from __future__ import annotations

import math

from flask import abort, current_app, g
from flask_smorest import abort as abort_with
from marshmallow import Schema, fields, validate

from ..extensions import db
from ..feedback import metric_queries as access
from ..reports import queries, staffing
from ..reports.export import SUMMARY_COLUMNS, rounded
from ..reports.stats import Summary
from . import presenters
from .auth import staff_endpoint
from .lookups import branch_or_404, service_of
from .parsing import Blueprint
from .schemas import Text

blp = Blueprint("reports", __name__, description="Reports and staffing advice")

_DAY = validate.Range(min=queries.FIRST_DAY, max=queries.LAST_DAY)


class ReportQuerySchema(Schema):
    branch = Text(
        validate=validate.Length(min=1, max=16),
        metadata={"description": "branch code; without it, every branch the caller may read"},
    )
    period = fields.String(
        load_default="day",
        validate=validate.OneOf(queries.PERIODS),
        metadata={"description": "day, ISO week (Monday-Sunday) or calendar month"},
    )
    date = fields.Date(
        required=True,
        validate=_DAY,
        metadata={"description": "a business day inside the period, YYYY-MM-DD"},
    )
    service = Text(
        validate=validate.Length(min=1, max=32),
        metadata={"description": "service code (with `branch`): only its tickets"},
    )


class ReportSummarySchema(Schema):
    issued = fields.Integer(metadata={"description": "tickets (visit steps) issued"})
    served = fields.Integer()
    called = fields.Integer()
    abandoned = fields.Integer(metadata={"description": "cancelled before being called"})
    no_show = fields.Integer()
    transferred = fields.Integer()
    wait_mean_s = fields.Float(allow_none=True, metadata={"description": "first call - issue"})
    wait_median_s = fields.Float(allow_none=True)
    wait_p90_s = fields.Float(allow_none=True)
    service_mean_s = fields.Float(allow_none=True, metadata={"description": "finish - start"})
    service_median_s = fields.Float(allow_none=True)
    service_p90_s = fields.Float(allow_none=True)
    abandonment_rate = fields.Float(allow_none=True, metadata={"description": "0..1"})
    no_show_rate = fields.Float(allow_none=True, metadata={"description": "0..1"})
    within_target = fields.Float(
        allow_none=True,
        metadata={"description": "share of called or abandoned tickets called within target"},
    )


class ReportPointSchema(ReportSummarySchema):
    key = fields.String(metadata={"description": "local hour (day reports) or business day"})


class ReportGroupSchema(ReportSummarySchema):
    id = fields.Integer(allow_none=True, metadata={"description": "null: not recorded"})
    code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class ReportHeatSchema(Schema):
    weekday = fields.Integer(metadata={"description": "0 Monday .. 6 Sunday, local"})
    hour = fields.Integer(metadata={"description": "local hour of issue"})
    arrivals = fields.Integer()
    wait_mean_s = fields.Float(allow_none=True)


class ReportSchema(Schema):
    period = fields.String()
    label = fields.String(metadata={"description": "2026-03-02, 2026-W10 or 2026-03"})
    start = fields.Date()
    end = fields.Date()
    branches = fields.List(fields.String())
    total = fields.Nested(ReportSummarySchema)
    series = fields.List(fields.Nested(ReportPointSchema))
    groups = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(ReportGroupSchema)))
    heatmap = fields.List(
        fields.Nested(ReportHeatSchema), metadata={"description": "the non-empty cells"}
    )


class StaffingQuerySchema(Schema):
    branch = Text(required=True, validate=validate.Length(min=1, max=16))
    date = fields.Date(required=True, validate=_DAY, metadata={"description": "the day planned"})
    target_s = fields.Integer(
        validate=validate.Range(min=0, max=4 * 3600),
        metadata={"description": "target wait in seconds (default REPORTS_TARGET_WAIT_S, 600)"},
    )
    share = fields.Float(
        validate=validate.Range(min=0.01, max=0.99),
        metadata={
            "description": "share to call within the target, 0.01..0.99 (default "
            "REPORTS_TARGET_SHARE, 0.8)"
        },
    )
    weeks = fields.Integer(
        validate=validate.Range(min=1, max=staffing.MAX_WEEKS),
        metadata={
            "description": "history: the same weekday of this many weeks before (default "
            "REPORTS_STAFFING_WEEKS, 4)"
        },
    )


class StaffingNeedSchema(Schema):
    service = fields.String()
    arrivals = fields.Float(metadata={"description": "forecast arrivals in the hour"})
    aht_s = fields.Float()
    patience_s = fields.Float(allow_none=True, metadata={"description": "null: infinite"})
    model = fields.String(metadata={"description": "erlang_c or erlang_a"})
    needed = fields.Integer()
    service_level = fields.Float(metadata={"description": "with `needed` counters, 0..1"})
    wait_probability = fields.Float()
    abandon_probability = fields.Float()
    history_counters = fields.Float()


class StaffingHourSchema(Schema):
    hour = fields.Integer()
    arrivals = fields.Float()
    needed = fields.Integer(metadata={"description": "sum over services (dedicated counters)"})
    history_counters = fields.Float(
        metadata={"description": "mean distinct counters that called in this hour in history"}
    )
    gap = fields.Float(metadata={"description": "needed - history_counters"})
    services = fields.List(fields.Nested(StaffingNeedSchema))


class StaffingSchema(Schema):
    branch = fields.String()
    timezone = fields.String()
    date = fields.Date()
    target_s = fields.Integer()
    share = fields.Float()
    weeks = fields.Integer()
    history_days = fields.List(fields.Date())
    days_used = fields.List(fields.Date())
    hours = fields.List(fields.Nested(StaffingHourSchema))


def summary(s: Summary) -> dict:
    return {name: rounded(name, getattr(s, name)) for name in SUMMARY_COLUMNS}


def _group(group: queries.Group) -> dict:
    item = group.item
    code = name = None
    if item is not None:
        if group.kind == "branch":
            code, name = item.code, item.name
        elif group.kind == "service":
            code, name = item.code, item.display_name(presenters.language())
        elif group.kind == "counter":
            name = item.name
        else:
            code, name = item.username, item.display_name
    return {"id": group.key, "code": code, "name": name, **summary(group.summary)}


def _branches(args) -> list:
    user = g.user
    if "branch" in args:
        branch = branch_or_404(args["branch"])
        if not access.may_read(user, branch):
            abort(403, description=f"{user.username} may not read the reports of {branch.code}")
        return [branch]
    if "service" in args:
        abort_with(
            422,
            messages={"query": {"service": ["a service is named together with its branch"]}},
            code="service_without_branch",
        )
    branches = access.readable_branches(user)
    if not branches:
        abort(403, description=f"{user.username} may not read reports")
    return branches


@blp.get("/reports")
@staff_endpoint(blp, 404, scope="reports:read")
@blp.arguments(ReportQuerySchema(), location="query")
@blp.response(200, ReportSchema)
def report(args):
    """The report of a branch (or of every branch the caller may read) for the day, ISO week
    or month holding `date`, on each branch's own calendar (`business_day`).

    Waits are first call - issue, service times finish - start; mean, median and 90th
    percentile are exact (linear interpolation between closest ranks, as `percentile_cont`).
    Abandoned: cancelled before being called; rates are shares of the tickets issued;
    `within_target` is the share of called or abandoned tickets called within the service's
    target wait. Branch managers read their branches; CX agents, executives and admins every
    branch (403 otherwise); 422 for a bad period or date.
    """
    branches = _branches(args)
    service_id = None
    if "service" in args:
        service = service_of(branches[0], args["service"])
        if service is None:
            abort_with(
                422,
                messages={"query": {"service": [f"no service {args['service']!r}"]}},
                code="unknown_service",
            )
        service_id = service.id
    data = queries.report(branches, args["period"], args["date"], service_id=service_id)
    db.session.commit()  # the figures of a closed period read for the first time, stored
    return {
        "period": data.period,
        "label": data.label,
        "start": data.start,
        "end": data.end,
        "branches": [b.code for b in branches],
        "total": summary(data.total),
        "series": [
            {
                "key": str(p.key if not hasattr(p.key, "isoformat") else p.key.isoformat()),
                **summary(p.summary),
            }
            for p in data.series
        ],
        "groups": {dim: [_group(grp) for grp in data.groups[dim]] for dim in queries.DIMENSIONS},
        "heatmap": [
            {
                "weekday": c.weekday,
                "hour": c.hour,
                "arrivals": c.arrivals,
                "wait_mean_s": rounded("wait_mean_s", c.wait_mean_s),
            }
            for day in data.heat
            for c in day
            if c.arrivals
        ],
    }


@blp.get("/reports/staffing")
@staff_endpoint(blp, 404, scope="reports:read")
@blp.arguments(StaffingQuerySchema(), location="query")
@blp.response(200, StaffingSchema)
def staffing_advice(args):
    """Counters needed per local hour of `date` at a branch to serve `share` of arrivals
    within `target_s`, from the mean arrivals of the same weekday over the `weeks` weeks
    before (days without tickets left out), the services' mean service times and, where
    customers were seen to abandon, their estimated patience (Erlang A; else Erlang C).
    Compared with the counters that called tickets in that hour in history (there is no
    staff roster). 403 for a branch the caller may not read, 422 for bad input."""
    branch = branch_or_404(args["branch"])
    user = g.user
    if not access.may_read(user, branch):
        abort(403, description=f"{user.username} may not read the reports of {branch.code}")
    config = current_app.config
    try:
        plan = staffing.plan(
            branch,
            args["date"],
            weeks=args.get("weeks") or config.get("REPORTS_STAFFING_WEEKS", staffing.DEFAULT_WEEKS),
            target_s=args.get(
                "target_s", config.get("REPORTS_TARGET_WAIT_S", staffing.DEFAULT_TARGET_S)
            ),
            share=args.get("share") or config.get("REPORTS_TARGET_SHARE", staffing.DEFAULT_SHARE),
        )
    except ValueError as exc:
        abort_with(422, message=str(exc), code="cannot_plan")
    codes = {s.id: s.code for s in branch.services}
    models = {m.service_id: m for m in plan.services}
    return {
        "branch": branch.code,
        "timezone": branch.timezone,
        "date": plan.day,
        "target_s": plan.target_s,
        "share": plan.share,
        "weeks": plan.weeks,
        "history_days": plan.history_days,
        "days_used": plan.days_used,
        "hours": [
            {
                "hour": h.hour,
                "arrivals": round(h.arrivals, 2),
                "needed": h.needed,
                "history_counters": round(h.history_counters, 2),
                "gap": round(h.gap, 2),
                "services": [
                    {
                        "service": codes.get(n.service_id),
                        "arrivals": round(n.arrivals, 2),
                        "aht_s": round(models[n.service_id].aht_s, 1),
                        "patience_s": None
                        if math.isinf(models[n.service_id].patience_s)
                        else round(models[n.service_id].patience_s, 1),
                        "model": n.model,
                        "needed": n.needed,
                        "service_level": round(n.result.service_level, 4),
                        "wait_probability": round(n.result.wait_probability, 4),
                        "abandon_probability": round(n.result.abandon_probability, 4),
                        "history_counters": round(n.history_counters, 2),
                    }
                    for n in h.needs
                ],
            }
            for h in plan.hours
        ],
    }
