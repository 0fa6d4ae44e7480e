"""CSV exports of visits, feedback and cases for the bank's data warehouse.

`GET /api/v1/exports/{visits,feedback,cases}.csv?from=&to=&branch=`, scope `exports:read`.
The format, the columns and what is left out (personal data) are in `exports/streams.py`.
"""

from __future__ import annotations

from flask import Response, abort, g, stream_with_context
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from ..exports import streams
from ..feedback import metric_queries as access
from ..reports.queries import FIRST_DAY, LAST_DAY
from .auth import staff_endpoint
from .lookups import branch_or_404
from .parsing import Blueprint
from .schemas import Text

blp = Blueprint(
    "exports",
    __name__,
    description="CSV exports of visits, feedback and cases for the data warehouse "
    "(UTF-8, header row, ISO-8601 UTC times, no personal data)",
)

MAX_RANGE_DAYS = 366
_DAY = validate.Range(min=FIRST_DAY, max=LAST_DAY)


class ExportQuerySchema(Schema):
    from_ = fields.Date(
        required=True,
        data_key="from",
        validate=_DAY,
        metadata={"description": "first day, YYYY-MM-DD (visits and feedback: business day)"},
    )
    to = fields.Date(
        required=True,
        validate=_DAY,
        metadata={
            "description": f"last day, inclusive; at most {MAX_RANGE_DAYS} days after `from`"
        },
    )
    branch = Text(
        validate=validate.Length(min=1, max=16),
        metadata={"description": "branch code; without it, every branch the caller may read"},
    )

    @validates_schema
    def _range(self, data, **_kwargs):
        start, end = data.get("from_"), data.get("to")
        if start is None or end is None:
            return
        if end < start:
            raise ValidationError("`to` is before `from`", "to")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise ValidationError(f"at most {MAX_RANGE_DAYS} days at once", "to")


def _branch_ids(args) -> list[int] | None:
    """The branches to export (None: all); 403 for a caller who may not read them."""
    user = g.user
    if "branch" in args:
        branch = branch_or_404(args["branch"])
        if not access.may_read(user, branch):
            abort(403, description=f"{user.username} may not export the data of {branch.code}")
        return [branch.id]
    if access.sees_network(user):
        return None
    branches = list(user.branches) if user.role in access.PAGE_READERS else []
    if not user.active or not branches:
        abort(403, description=f"{user.username} may not export data")
    return [b.id for b in branches]


def _csv(name: str, args) -> Response:
    columns, rows = streams.EXPORTS[name]
    branch_ids = _branch_ids(args)
    body = streams.encode(columns, rows(args["from_"], args["to"], branch_ids))
    filename = f"{name}_{args['from_'].isoformat()}_{args['to'].isoformat()}.csv"
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _doc(columns) -> dict:
    return {
        "responses": {
            "200": {
                "description": "CSV, UTF-8, CRLF, header row; columns in this order: "
                + ", ".join(f"`{c}`" for c in columns),
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    }


@blp.get("/exports/visits.csv")
@staff_endpoint(blp, 404, 422, scope="exports:read")
@blp.arguments(ExportQuerySchema(), location="query")
@blp.doc(**_doc(streams.VISIT_COLUMNS))
def export_visits(args):
    """Every visit step (ticket) of the business days `from`..`to`, one row each.

    `wait_s` is first call - issue, `service_s` finish - start, in seconds. Branch managers
    export their branches; CX agents, executives and admins every branch (403 otherwise).
    """
    return _csv("visits", args)


@blp.get("/exports/feedback.csv")
@staff_endpoint(blp, 404, 422, scope="exports:read")
@blp.arguments(ExportQuerySchema(), location="query")
@blp.doc(**_doc(streams.FEEDBACK_COLUMNS))
def export_feedback(args):
    """Every feedback response of the business days `from`..`to` (no comment texts:
    `has_comment` says whether there was one)."""
    return _csv("feedback", args)


@blp.get("/exports/cases.csv")
@staff_endpoint(blp, 404, 422, scope="exports:read")
@blp.arguments(ExportQuerySchema(), location="query")
@blp.doc(**_doc(streams.CASE_COLUMNS))
def export_cases(args):
    """Every case opened on the business days `from`..`to` of its branch (local days)."""
    return _csv("cases", args)
