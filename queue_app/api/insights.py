"""Busy hours: the typical wait of each local hour of the week, the live wait and nearby
branches with shorter waits, for one branch and service."""

from flask import abort
from marshmallow import Schema, fields, validate

from ..core.types import utcnow
from ..insights import queries as insights
from .auth import documents_errors
from .lookups import branch_or_404, service_of
from .parsing import Blueprint

blp = Blueprint("insights", __name__, description="Busy hours: typical and live waits")


class BusyQuerySchema(Schema):
    weeks = fields.Integer(
        validate=validate.Range(min=1, max=52),
        metadata={"description": "how many past weeks to read (default: BUSY_HOURS_WEEKS, 8)"},
    )


class HourSchema(Schema):
    weekday = fields.Integer(metadata={"description": "0 Monday .. 6 Sunday, branch's calendar"})
    hour = fields.Integer(metadata={"description": "local hour 0-23 (the branch's time zone)"})
    typical_wait_s = fields.Integer(
        allow_none=True,
        metadata={"description": "median wait of arrivals in that hour; null: too few samples"},
    )
    samples = fields.Integer(metadata={"description": "called tickets the figure stands on"})


class NearbySchema(Schema):
    code = fields.String()
    name = fields.String()
    distance_km = fields.Float()
    live_wait_s = fields.Integer()


class BusyHoursSchema(Schema):
    timezone = fields.String(metadata={"description": "the branch's IANA time zone"})
    live_wait_s = fields.Integer(
        allow_none=True,
        metadata={"description": "the estimate a ticket taken now is told; null: none open"},
    )
    hours = fields.List(fields.Nested(HourSchema))
    nearby = fields.List(
        fields.Nested(NearbySchema),
        metadata={"description": "nearest other branches with the service and a shorter wait"},
    )


@blp.get("/branches/<code>/services/<service>/busy-hours")
@blp.arguments(BusyQuerySchema(), location="query")
@blp.response(200, BusyHoursSchema)
@documents_errors(blp, 404)
def busy_hours(args, code, service):
    """How long the wait usually is at each opening hour of the week, and now.

    `hours` lists every hour the branch opens and every hour with history, from the last
    weeks' finished days (rolled up nightly); an hour with too few called tickets has
    `typical_wait_s: null`, never 0. `nearby` lists, nearest first, up to three other active
    branches with the same service within the configured radius whose live wait is shorter.
    """
    branch = branch_or_404(code)
    svc = service_of(branch, service)
    if svc is None or not svc.active:
        abort(404, description=f"branch {branch.code} has no service {service!r}")
    return insights.busy_hours(branch, svc, now=utcnow(), weeks=args.get("weeks"))
