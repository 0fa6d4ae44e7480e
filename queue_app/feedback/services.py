"""Recording a rating of one visit step, whatever the channel (tablet, QR, link, API).

`record_response(ticket, channel=..., nps=..., csat=..., ces=..., reasons=..., comment=...,
now=...)` is the only code that writes a `FeedbackResponse`. It flushes, never commits.

Rules, each with its domain error (the API and the pages turn them into 409/422):

- the step must be finished and served (status `finished`: a step only finishes from
  `serving`; a cancelled, no-show or transferred step was not served here): else `Conflict`
  `not_finished` (409);
- a step is rated once, whatever the channel: `Conflict` `already_rated` (409). The unique
  index on `feedback_responses.ticket_id` is what guarantees it: the insert runs in a savepoint
  (`begin_nested`), and when a concurrent rating of the same step committed first, the
  `IntegrityError` rolls back only the savepoint and becomes the same 409;
- values on their scales (NPS 0-10, CSAT 1-5, CES 1-5; whole numbers, not booleans), and only
  the questions the touchpoint asks (`questions.survey_for`): `InvalidAnswer` (422) with the
  code `invalid_nps` / `invalid_csat` / `invalid_ces` and the `field`;
- reasons only among the codes the touchpoint's survey offers: `unknown_reason` (422, field
  `reasons`); a comment at most `MAX_COMMENT` characters once stripped (`comment_too_long`),
  and only if the survey asks for one (`invalid_comment`);
- something must be said: `empty_response` (422) when no score, no reason and no comment.

The response copies the touchpoint (branch, service, counter, staff member, the visit's
customer) and the step's facts (DESIGN.md): `business_day` of the ticket; `wait_s` = first
call - arrival (`called_at - issued_at`: issue, check-in for an appointment, the transfer for a
later step); `quoted_wait_s` as the ticket stored it at issue; `service_s` = finish - start;
`transfers` = the earlier steps of the visit (`step - 1`).

Signals, once the response is flushed:

- `feedback.received` **inside the unit of work** (`core.events.in_transaction`, payload
  `response`, `session` and `now`): the escalation rules (queue_app/cases) open a case in the same
  transaction, so a rating and its case are committed, or rolled back, together. A receiver
  that fails fails the rating.
- `feedback.recorded` **after the commit** (`core.events.publish`, payload `response_id`,
  `branch_id`): for pushes (the CX dashboard, the tablet's reset) built from committed rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..core.errors import Conflict, InvalidInput, NotFound
from ..core.events import in_transaction, publish
from ..extensions import db
from ..tickets.models import Ticket, TicketStatus
from .models import FeedbackChannel, FeedbackResponse, SurveyConfig
from .questions import survey_for

MAX_COMMENT = 2000
MAX_REASONS = 20
SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 5)}
RECEIVED = "feedback.received"
RECORDED = "feedback.recorded"


class InvalidAnswer(InvalidInput):
    """An answer the survey cannot take; `field` names it (for the page's inline error)."""

    def __init__(self, message: str, code: str, field: str | None):
        super().__init__(message, code)
        self.field = field


def asked(survey: SurveyConfig) -> list[str]:
    """The scored questions of a survey, in the order they are shown."""
    return [
        q
        for q, on in (("nps", survey.ask_nps), ("csat", survey.ask_csat), ("ces", survey.ask_ces))
        if on
    ]


def asks_anything(survey: SurveyConfig) -> bool:
    return bool(asked(survey) or survey.reasons or survey.ask_comment)


def _seconds(later: datetime | None, earlier: datetime | None) -> int | None:
    if later is None or earlier is None:
        return None
    return max(0, round((later - earlier).total_seconds()))


def _check_score(name: str, value, survey: SurveyConfig) -> int | None:
    if value is None:
        return None
    low, high = SCALES[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidAnswer(
            f"{name} must be a whole number from {low} to {high}", f"invalid_{name}", name
        )
    if name not in asked(survey):
        raise InvalidAnswer(f"this survey does not ask for {name}", f"invalid_{name}", name)
    return value


def _check_reasons(reasons, survey: SurveyConfig) -> list[str]:
    if reasons is None:
        return []
    if isinstance(reasons, str) or not all(isinstance(r, str) for r in reasons):
        raise InvalidAnswer("reasons must be a list of reason codes", "unknown_reason", "reasons")
    offered = list(survey.reasons or ())
    chosen: list[str] = []
    for code in reasons:
        if code not in offered:
            raise InvalidAnswer(
                f"{code[:40]!r} is not a reason this survey offers", "unknown_reason", "reasons"
            )
        if code not in chosen:
            chosen.append(code)
    # in the survey's own order, so equal answers are stored alike
    return sorted(chosen, key=offered.index)[:MAX_REASONS]


def _check_comment(comment, survey: SurveyConfig) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InvalidAnswer("the comment must be text", "invalid_comment", "comment")
    text = comment.replace("\x00", "").strip()
    if not text:
        return None
    if len(text) > MAX_COMMENT:
        raise InvalidAnswer(
            f"the comment is longer than {MAX_COMMENT} characters", "comment_too_long", "comment"
        )
    if not survey.ask_comment:
        raise InvalidAnswer("this survey does not ask for a comment", "invalid_comment", "comment")
    return text


def existing_response(ticket_id: int) -> FeedbackResponse | None:
    return db.session.scalar(
        select(FeedbackResponse).where(FeedbackResponse.ticket_id == ticket_id)
    )


def is_rateable(ticket: Ticket) -> bool:
    """Finished and served: a step a customer can rate (if nobody has yet)."""
    return ticket.status == TicketStatus.FINISHED


def _already_rated() -> Conflict:
    return Conflict("this visit step has already been rated", "already_rated")


def record_response(
    ticket: Ticket,
    *,
    channel: FeedbackChannel,
    nps=None,
    csat=None,
    ces=None,
    reasons=(),
    comment=None,
    locale: str | None = None,
    now: datetime,
) -> FeedbackResponse:
    """Record the rating of `ticket` (one visit step); see the module's docstring."""
    if not is_rateable(ticket):
        raise Conflict(
            f"ticket {ticket.number} is {ticket.status.value}: only a finished visit step "
            "can be rated",
            "not_finished",
        )
    if existing_response(ticket.id) is not None:
        raise _already_rated()
    survey = survey_for(ticket.branch_id, ticket.service_id)
    scores = {
        name: _check_score(name, value, survey)
        for name, value in (("nps", nps), ("csat", csat), ("ces", ces))
    }
    chosen = _check_reasons(reasons, survey)
    text = _check_comment(comment, survey)
    if all(v is None for v in scores.values()) and not chosen and text is None:
        raise InvalidAnswer(
            "the response says nothing: answer at least one question", "empty_response", None
        )
    visit = ticket.visit
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=ticket.visit_id,
        branch_id=ticket.branch_id,
        service_id=ticket.service_id,
        counter_id=ticket.counter_id,
        staff_id=ticket.staff_id,
        customer_id=visit.customer_id,
        channel=FeedbackChannel(channel),
        nps=scores["nps"],
        csat=scores["csat"],
        ces=scores["ces"],
        reasons=chosen,
        comment=text,
        locale=(locale or None) and str(locale)[:8],
        submitted_at=now,
        business_day=ticket.business_day,
        wait_s=_seconds(ticket.called_at, ticket.issued_at),
        quoted_wait_s=ticket.quoted_wait_s,
        service_s=_seconds(ticket.finished_at, ticket.started_at),
        transfers=max(0, ticket.step - 1),
    )
    try:
        with db.session.begin_nested():  # a savepoint: a lost race undoes only this insert
            db.session.add(response)
            db.session.flush()
    except IntegrityError:
        # another rating of the same step committed meanwhile (unique ticket_id)
        raise _already_rated() from None
    in_transaction(RECEIVED, response=response, session=db.session, now=now)
    publish(db.session, RECORDED, response_id=response.id, branch_id=response.branch_id)
    return response


# --- which step a customer rates -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rateable:
    """A step of a visit as the rating pages and the API see it."""

    ticket: Ticket
    rated: bool


def visit_steps(visit_id: int) -> list[Rateable]:
    """The finished-served steps of a visit, in order, each with whether it was rated; two
    queries."""
    tickets = db.session.scalars(
        select(Ticket)
        .where(Ticket.visit_id == visit_id, Ticket.status == TicketStatus.FINISHED)
        .order_by(Ticket.step)
    ).all()
    if not tickets:
        return []
    rated = set(
        db.session.scalars(
            select(FeedbackResponse.ticket_id).where(
                FeedbackResponse.ticket_id.in_([t.id for t in tickets])
            )
        )
    )
    return [Rateable(t, t.id in rated) for t in tickets]


def step_to_rate(visit_id: int, step: int | None = None) -> Ticket:
    """The step of the visit a rating is for: `step` if given, else the last finished-served
    step without a response.

    `NotFound` `no_such_step` for a step the visit does not have; `Conflict` `already_rated`
    when every finished step is rated (or the named one is), `not_finished` when none has
    finished (or the named one has not).
    """
    if step is not None:
        ticket = db.session.scalar(
            select(Ticket).where(Ticket.visit_id == visit_id, Ticket.step == step)
        )
        if ticket is None:
            raise NotFound(f"this visit has no step {step}", "no_such_step")
        return ticket  # record_response says whether it can be rated
    steps = visit_steps(visit_id)
    open_steps = [s.ticket for s in steps if not s.rated]
    if open_steps:
        return open_steps[-1]
    if steps:
        raise _already_rated()
    raise Conflict("this visit has no finished step to rate yet", "not_finished")
