"""Feedback metrics of a branch: NPS (with its sample size and 95% margin of error), CSAT%
and CES over a range of business days, the trend, the touchpoints, and NPS by the wait
actually waited and by whether the quoted wait was kept."""

from flask import abort, current_app, g
from flask_smorest import abort as abort_with
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from ..accounts.models import User
from ..extensions import db
from ..feedback import metric_queries as mq
from ..feedback.metrics import Tally, display
from ..feedback.models import FeedbackChannel
from . import presenters
from .auth import staff_endpoint
from .lookups import MAX_ID, branch_or_404, service_of
from .parsing import Blueprint
from .schemas import EARLIEST, LATEST, Text

blp = Blueprint("metrics", __name__, description="Feedback metrics: NPS, CSAT and CES")

_DAY = validate.Range(min=EARLIEST.date(), max=LATEST.date())


class MetricsQuerySchema(Schema):
    from_ = fields.Date(
        required=True,
        data_key="from",
        validate=_DAY,
        metadata={"description": "first business day (branch's calendar), YYYY-MM-DD"},
    )
    to = fields.Date(
        required=True,
        validate=_DAY,
        metadata={
            "description": f"last business day, inclusive; at most {mq.MAX_RANGE_DAYS} "
            "days after `from`"
        },
    )
    service = Text(validate=validate.Length(min=1, max=32), metadata={"description": "code"})
    counter = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "counter id"}
    )
    staff = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID), metadata={"description": "user id"}
    )
    channel = fields.String(validate=validate.OneOf([c.value for c in FeedbackChannel]))
    group = fields.String(
        load_default="day",
        validate=validate.OneOf(mq.GROUPS),
        metadata={"description": "trend periods: day, ISO week (Monday-Sunday) or month"},
    )

    @validates_schema
    def _range(self, data, **_kwargs):
        start, end = data.get("from_"), data.get("to")
        if start is None or end is None:
            return
        try:
            mq.check_range(start, end)
        except ValueError as exc:
            raise ValidationError(str(exc), "to") from None


class NpsSchema(Schema):
    score = fields.Float(
        allow_none=True,
        metadata={"description": "%promoters - %detractors, -100..100, 1 decimal; null: n = 0"},
    )
    n = fields.Integer(metadata={"description": "answers to the NPS question"})
    margin = fields.Float(
        allow_none=True,
        metadata={"description": "95% margin of error in NPS points, 1 decimal; null: n = 0"},
    )
    promoters = fields.Integer(metadata={"description": "answers 9-10"})
    passives = fields.Integer(metadata={"description": "answers 7-8"})
    detractors = fields.Integer(metadata={"description": "answers 0-6"})


class CsatSchema(Schema):
    score = fields.Float(
        allow_none=True, metadata={"description": "% of answers 4-5, 0..100, 1 decimal"}
    )
    n = fields.Integer()


class CesSchema(Schema):
    score = fields.Float(
        allow_none=True,
        metadata={"description": "%easy (4-5) - %difficult (1-2), -100..100, 1 decimal"},
    )
    n = fields.Integer()


class ScoresSchema(Schema):
    nps = fields.Nested(NpsSchema)
    csat = fields.Nested(CsatSchema)
    ces = fields.Nested(CesSchema)


class PeriodSchema(ScoresSchema):
    period = fields.String(metadata={"description": "2026-03-02, 2026-W10 or 2026-03"})
    start = fields.Date(metadata={"description": "first day of the period inside the range"})
    end = fields.Date(metadata={"description": "last day of the period inside the range"})


class WaitBucketSchema(ScoresSchema):
    bucket = fields.String(metadata={"description": "minutes waited: 0-5 ... 30+, or unknown"})
    min_wait_s = fields.Integer(allow_none=True)
    max_wait_s = fields.Integer(allow_none=True, metadata={"description": "exclusive"})


class QuoteSchema(ScoresSchema):
    quote = fields.String(
        metadata={
            "description": "kept (waited at most the wait quoted at arrival), not_kept, "
            "unknown (no quote or no wait)"
        }
    )


class TouchpointSchema(ScoresSchema):
    id = fields.Raw(allow_none=True, metadata={"description": "null: not recorded"})
    code = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class TouchpointsSchema(Schema):
    service = fields.List(fields.Nested(TouchpointSchema))
    counter = fields.List(fields.Nested(TouchpointSchema))
    staff = fields.List(fields.Nested(TouchpointSchema))
    channel = fields.List(fields.Nested(TouchpointSchema))


class MetricsSchema(ScoresSchema):
    branch = fields.String()
    timezone = fields.String(metadata={"description": "the zone of the business days"})
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    group = fields.String()
    min_n = fields.Integer(
        metadata={"description": "below this many answers a score is a small sample"}
    )
    series = fields.List(fields.Nested(PeriodSchema))
    by_wait = fields.List(fields.Nested(WaitBucketSchema))
    by_quote = fields.List(fields.Nested(QuoteSchema))
    touchpoints = fields.Nested(TouchpointsSchema)


def scores(tally: Tally) -> dict:
    """The three scores of a tally as the API shows them (1 decimal)."""
    nps = tally.nps()
    csat = tally.csat()
    ces = tally.ces()
    return {
        "nps": {
            "score": display(nps.score),
            "n": nps.n,
            "margin": display(nps.margin),
            "promoters": nps.promoters,
            "passives": nps.passives,
            "detractors": nps.detractors,
        },
        "csat": {"score": display(csat.score), "n": csat.n},
        "ces": {"score": display(ces.score), "n": ces.n},
    }


def _touchpoint(tp: mq.Touchpoint) -> dict:
    item = tp.item
    if tp.kind == "service":
        code, name = (item.code, item.display_name(presenters.language())) if item else (None, None)
    elif tp.kind == "counter":
        code, name = None, item.name if item else None
    elif tp.kind == "staff":
        code, name = (item.username, item.display_name) if item else (None, None)
    else:  # channel
        code, name = tp.key.value, None
    key = tp.key.value if tp.kind == "channel" else tp.key
    return {"id": key, "code": code, "name": name, **scores(tp.tally)}


def invalid(field: str, message: str, code: str):
    """422 for a query parameter that names nothing, shaped like the schema's own errors."""
    abort_with(422, messages={"query": {field: [message]}}, code=code)


def _filters(branch, args) -> mq.Filters:
    service_id = counter_id = staff_id = None
    if "service" in args:
        service = service_of(branch, args["service"])
        if service is None:
            invalid(
                "service",
                f"branch {branch.code} has no service {args['service']!r}",
                "unknown_service",
            )
        service_id = service.id
    if "counter" in args:
        if not any(c.id == args["counter"] for c in branch.counters):
            invalid(
                "counter",
                f"branch {branch.code} has no counter {args['counter']}",
                "unknown_counter",
            )
        counter_id = args["counter"]
    if "staff" in args:
        if db.session.scalar(select(User.id).where(User.id == args["staff"])) is None:
            invalid("staff", f"no user {args['staff']}", "unknown_staff")
        staff_id = args["staff"]
    channel = FeedbackChannel(args["channel"]) if "channel" in args else None
    return mq.Filters(service_id, counter_id, staff_id, channel)


@blp.get("/branches/<code>/metrics")
@staff_endpoint(blp, 404, scope="feedback:read")
@blp.arguments(MetricsQuerySchema(), location="query")
@blp.response(200, MetricsSchema)
def branch_metrics(args, code):
    """NPS, CSAT% and CES of the responses given on the branch's business days `from`..`to`.

    Scores follow the design brief exactly: NPS = %promoters (9-10) - %detractors (0-6) with
    its 95% margin of error `1.96 * 100 * sqrt((pP + pD - (pP - pD)^2) / n)`; CSAT% = share
    of answers 4-5; CES = %easy (4-5) - %difficult (1-2). Scores and margins are rounded to
    one decimal; a score without answers is `null`, never 0. `series` has one item per day,
    ISO week or month (`group`) of the range, empty ones included; `by_wait` groups by the
    wait actually waited, `by_quote` by whether it stayed within the wait quoted at arrival.
    Optional filters (`service` code, `counter` id, `staff` user id, `channel`) narrow every
    figure. Staff of the branch, its managers and the CX roles may read it (403 otherwise);
    422 for a bad date, `to` before `from`, or a range over 366 days.
    """
    branch = branch_or_404(code)
    user = g.user
    if not mq.may_read(user, branch, api=True):
        abort(403, description=f"{user.username} may not read the metrics of {branch.code}")
    report = mq.report(
        [branch.id],
        args["from_"],
        args["to"],
        group=args["group"],
        filters=_filters(branch, args),
        wait_buckets_min=current_app.config.get(
            "METRICS_WAIT_BUCKETS_MIN", mq.DEFAULT_WAIT_BUCKETS_MIN
        ),
    )
    return {
        "branch": branch.code,
        "timezone": branch.timezone,
        "from_": report.start,
        "to": report.end,
        "group": report.group,
        "min_n": current_app.config.get("METRICS_MIN_N", mq.DEFAULT_MIN_N),
        **scores(report.total),
        "series": [
            {"period": p.label, "start": p.start, "end": p.end, **scores(p.tally)}
            for p in report.series
        ],
        "by_wait": [
            {"bucket": b.key, "min_wait_s": b.low_s, "max_wait_s": b.high_s, **scores(b.tally)}
            for b in report.by_wait
        ],
        "by_quote": [{"quote": k, **scores(t)} for k, t in report.by_quote.items()],
        "touchpoints": {
            kind: [_touchpoint(tp) for tp in report.touchpoints[kind]]
            for kind in ("service", "counter", "staff", "channel")
        },
    }
