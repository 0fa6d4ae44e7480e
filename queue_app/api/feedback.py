"""Rating a visit through the API: what can be rated and its questions, and posting a rating
(`feedback/services.py`). Public endpoints: the visit's token is the customer's secret.
Rate-limited per network address (`FEEDBACK_RATE_LIMIT`)."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from ..core.types import utcnow
from ..extensions import db, limiter
from ..feedback import services
from ..feedback.models import FeedbackChannel
from ..feedback.questions import survey_for
from ..feedback.wording import survey_view
from . import presenters
from .auth import documents_errors
from .lookups import ticket_by_token_or_404
from .parsing import Blueprint
from .schemas import Text

blp = Blueprint("feedback", __name__, description="Rating a visit (NPS, CSAT, CES)")

DEFAULT_RATE_LIMIT = "30 per minute"


def _limit() -> str:
    return current_app.config.get("FEEDBACK_RATE_LIMIT", DEFAULT_RATE_LIMIT)


class Score(fields.Integer):
    """A JSON integer (not 7.0, "7" or true); the range is the service's to check, so that
    an out-of-range value answers `invalid_nps` etc."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, allow_none=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        number = super()._deserialize(value, attr, data, **kwargs)
        if number is not None and abs(number) > 10**6:
            raise ValidationError("Out of range.")
        return number


class FeedbackInSchema(Schema):
    nps = Score(metadata={"description": "0-10: how likely to recommend"})
    csat = Score(metadata={"description": "1-5: how satisfied with the visit"})
    ces = Score(metadata={"description": "1-5: how easy it was"})
    reasons = fields.List(
        Text(validate=validate.Length(min=1, max=40)),
        validate=validate.Length(max=20),
        metadata={"description": "reason codes the step's survey offers (see GET)"},
    )
    comment = Text(
        multiline=True,
        allow_none=True,
        validate=validate.Length(max=services.MAX_COMMENT * 2),
        metadata={"description": f"at most {services.MAX_COMMENT} characters once trimmed"},
    )
    step = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=1000),
        metadata={
            "description": "the visit step to rate; default: the last finished one not rated yet"
        },
    )


class FeedbackOutSchema(Schema):
    id = fields.Integer()
    step = fields.Integer()
    number = fields.String()
    service = fields.String()
    channel = fields.String()
    nps = fields.Integer(allow_none=True)
    csat = fields.Integer(allow_none=True)
    ces = fields.Integer(allow_none=True)
    reasons = fields.List(fields.String())
    comment = fields.String(allow_none=True)
    submitted_at = fields.AwareDateTime()


class QuestionSchema(Schema):
    id = fields.String(metadata={"description": "`nps`, `csat` or `ces`: the field to post"})
    text = fields.String()
    min = fields.Integer()
    max = fields.Integer()
    min_label = fields.String()
    max_label = fields.String()


class ReasonSchema(Schema):
    code = fields.String()
    label = fields.String()


class StepSchema(Schema):
    step = fields.Integer()
    number = fields.String()
    service = fields.String()
    service_name = fields.String()
    finished_at = fields.AwareDateTime()
    rated = fields.Boolean()
    questions = fields.List(fields.Nested(QuestionSchema))
    reasons = fields.List(fields.Nested(ReasonSchema))
    comment = fields.Boolean(metadata={"description": "whether a comment is asked"})


class RateableSchema(Schema):
    steps = fields.List(
        fields.Nested(StepSchema),
        metadata={"description": "the visit's finished steps, in order, rated or not"},
    )
    next_step = fields.Integer(
        allow_none=True, metadata={"description": "what a POST without `step` rates"}
    )


def _response(response, ticket) -> dict:
    return {
        "id": response.id,
        "step": ticket.step,
        "number": ticket.number,
        "service": ticket.service.code,
        "channel": response.channel.value,
        "nps": response.nps,
        "csat": response.csat,
        "ces": response.ces,
        "reasons": list(response.reasons or ()),
        "comment": response.comment,
        "submitted_at": response.submitted_at,
    }


@blp.get("/tickets/<token>/feedback")
@blp.response(200, RateableSchema)
@documents_errors(blp, 404)
def rateable(token):
    """The steps of the visit that can be rated, each with the questions its touchpoint asks
    (in the request's language), so that an app can show the survey."""
    ticket = ticket_by_token_or_404(token)
    lang = presenters.language()
    steps = []
    for item in services.visit_steps(ticket.visit_id):
        t = item.ticket
        steps.append(
            {
                "step": t.step,
                "number": t.number,
                "service": t.service.code,
                "service_name": t.service.display_name(lang),
                "finished_at": t.finished_at,
                "rated": item.rated,
                **survey_view(survey_for(t.branch_id, t.service_id), t.branch.name),
            }
        )
    open_steps = [s["step"] for s in steps if not s["rated"]]
    return {"steps": steps, "next_step": open_steps[-1] if open_steps else None}


@blp.post("/tickets/<token>/feedback")
@limiter.limit(_limit)
@blp.arguments(FeedbackInSchema())
@blp.response(201, FeedbackOutSchema)
@documents_errors(blp, 404, 409, 429)
def post_feedback(data, token):
    """Rate a finished visit step: any of `nps` (0-10), `csat` (1-5), `ces` (1-5), `reasons`,
    `comment`, for the last finished step not rated yet (or `step`).

    409 `already_rated`, `not_finished`; 404 `no_such_step`; 422 `invalid_nps`,
    `invalid_csat`, `invalid_ces` (out of range, or not asked at this touchpoint),
    `unknown_reason`, `comment_too_long`, `invalid_comment`, `empty_response`.
    """
    visit_ticket = ticket_by_token_or_404(token)
    ticket = services.step_to_rate(visit_ticket.visit_id, data.get("step"))
    response = services.record_response(
        ticket,
        channel=FeedbackChannel.API,
        nps=data.get("nps"),
        csat=data.get("csat"),
        ces=data.get("ces"),
        reasons=data.get("reasons") or (),
        comment=data.get("comment"),
        locale=presenters.language(),
        now=utcnow(),
    )
    db.session.commit()
    return _response(response, ticket)
