"""Cases: the escalation pipeline's work list and the work on one case (CX roles; a branch
manager sees the cases of their own branches)."""

from __future__ import annotations

from flask import abort, g
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from ..accounts.models import CX_ROLES, User
from ..cases import queries
from ..cases import services as cases
from ..cases.models import Case, CaseStatus, RootCause
from ..core.types import utcnow
from ..extensions import db
from .auth import staff_endpoint
from .lookups import MAX_ID, branch_or_404
from .parsing import Blueprint
from .schemas import EmptySchema, StrictBoolean, Text

blp = Blueprint("cases", __name__, description="Cases: unhappy customers and their follow-up")


class CaseQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in CaseStatus]))
    branch = Text(validate=validate.Length(min=1, max=16), metadata={"description": "code"})
    level = fields.Integer(validate=validate.Range(min=1, max=99))


class CaseSchema(Schema):
    id = fields.Integer()
    level = fields.Integer()
    status = fields.String()
    owner = fields.String(allow_none=True, metadata={"description": "the owner's username"})
    owner_name = fields.String(allow_none=True)
    department = fields.String(allow_none=True)
    due_at = fields.String(
        allow_none=True,
        metadata={"description": "ISO 8601 in the branch's offset; null: no escalation clock"},
    )
    overdue = fields.Boolean()
    ticket_number = fields.String()
    branch = fields.String()
    service = fields.String()
    service_name = fields.String()
    opened_at = fields.String()
    first_contact_at = fields.String(allow_none=True)
    resolved_at = fields.String(allow_none=True)
    triggers = fields.List(fields.String())
    nps = fields.Integer(allow_none=True)
    csat = fields.Integer(allow_none=True)
    ces = fields.Integer(allow_none=True)
    root_cause = fields.String(allow_none=True)
    reason_code = fields.String(allow_none=True)
    action_taken = fields.String(allow_none=True)
    recovery_nps = fields.Integer(allow_none=True)


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema))


class CaseStepSchema(Schema):
    kind = fields.String()
    at = fields.String()
    level = fields.Integer()
    actor = fields.String(allow_none=True, metadata={"description": "username; null: system"})
    note = fields.String(allow_none=True)
    data = fields.Dict()


class CaseDetailSchema(CaseSchema):
    reasons = fields.List(fields.String())
    comment = fields.String(allow_none=True)
    steps = fields.List(fields.Nested(CaseStepSchema))


class CaseContactSchema(Schema):
    reached = StrictBoolean(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(cases.CONTACT_CHANNELS))
    note = Text(multiline=True, validate=validate.Length(max=2000))


class CaseNoteSchema(Schema):
    note = Text(multiline=True, required=True, validate=validate.Length(min=1, max=2000))


class CaseReassignSchema(Schema):
    to_user = Text(validate=validate.Length(min=1, max=64), metadata={"description": "username"})
    department = Text(validate=validate.Length(min=1, max=80))
    note = Text(multiline=True, validate=validate.Length(max=2000))


class CaseResolveSchema(Schema):
    root_cause = fields.String(required=True, validate=validate.OneOf([r.value for r in RootCause]))
    reason_code = fields.String(required=True, validate=validate.OneOf(cases.CASE_REASON_CODES))
    action_taken = Text(multiline=True, required=True, validate=validate.Length(min=1, max=2000))


def _cx_user() -> User:
    user = g.user
    if user.role not in CX_ROLES:
        abort(403, description=f"{user.username} has no access to cases")
    return user


def _iso(case: Case, moment) -> str | None:
    return case.branch.local(moment).isoformat() if moment is not None else None


def present(case: Case, *, now, owners: dict, responses: dict, tickets: dict) -> dict:
    owner = owners.get(case.owner_id)
    response = responses.get(case.response_id)
    return {
        "id": case.id,
        "level": case.level,
        "status": case.status.value,
        "owner": owner.username if owner else None,
        "owner_name": owner.display_name if owner else None,
        "department": case.department,
        "due_at": _iso(case, case.due_at),
        "overdue": case.due_at is not None and case.due_at <= now,
        "ticket_number": tickets.get(case.ticket_id),
        "branch": case.branch.code,
        "service": case.service.code,
        "service_name": case.service.display_name(),
        "opened_at": _iso(case, case.opened_at),
        "first_contact_at": _iso(case, case.first_contact_at),
        "resolved_at": _iso(case, case.resolved_at),
        "triggers": list(case.triggers or ()),
        "nps": response.nps if response else None,
        "csat": response.csat if response else None,
        "ces": response.ces if response else None,
        "root_cause": case.root_cause.value if case.root_cause else None,
        "reason_code": case.reason_code,
        "action_taken": case.action_taken,
        "recovery_nps": case.recovery_nps,
    }


def _present_many(items: list[Case], now) -> list[dict]:
    from ..feedback.models import FeedbackResponse
    from ..tickets.models import Ticket

    owners = queries.users_by_id(c.owner_id for c in items)
    response_ids = [c.response_id for c in items]
    responses = (
        {
            r.id: r
            for r in db.session.scalars(
                select(FeedbackResponse).where(FeedbackResponse.id.in_(response_ids))
            )
        }
        if items
        else {}
    )
    ticket_ids = [c.ticket_id for c in items]
    tickets = (
        dict(
            db.session.execute(
                select(Ticket.id, Ticket.number).where(Ticket.id.in_(ticket_ids))
            ).all()
        )
        if items
        else {}
    )
    return [present(c, now=now, owners=owners, responses=responses, tickets=tickets) for c in items]


def _case_or_404(case_id: int, user: User) -> Case:
    # a larger number names nothing (and must not reach the database: see lookups.MAX_ID)
    case = db.session.get(Case, case_id) if 1 <= case_id <= MAX_ID else None
    if case is None:
        abort(404, description=f"no case {case_id}")
    if not queries.may_see(user, case):
        abort(403, description=f"{user.username} has no access to branch {case.branch.code}")
    return case


def _detail(case: Case) -> dict:
    now = utcnow()
    data = _present_many([case], now)[0]
    facts = queries.facts_of(case)
    actors = queries.users_by_id(s.actor_id for s in case.steps)
    data["reasons"] = list(facts.response.reasons or ()) if facts.response else []
    data["comment"] = facts.response.comment if facts.response else None
    data["steps"] = [
        {
            "kind": s.kind.value,
            "at": _iso(case, s.at),
            "level": s.level,
            "actor": actors[s.actor_id].username if s.actor_id in actors else None,
            "note": s.note,
            "data": s.data or {},
        }
        for s in case.steps
    ]
    return data


@blp.get("/cases")
@staff_endpoint(blp, 404, scope="cases:read")
@blp.arguments(CaseQuerySchema(), location="query")
@blp.response(200, CaseListSchema)
def list_cases(args):
    """The cases the caller may see, the most urgent first (`overdue`: its due time passed).

    Branch managers see the cases of their branches (403 for another branch's filter); CX
    agents, executives and admins the network's.
    """
    user = _cx_user()
    branch = None
    if args.get("branch"):
        branch = branch_or_404(args["branch"])
        if not queries.sees_every_branch(user) and not user.belongs_to(branch):
            abort(403, description=f"{user.username} has no access to branch {branch.code}")
    items = queries.list_cases(
        user, status=args.get("status"), branch=branch, level=args.get("level")
    )
    return {"items": _present_many(items, utcnow())}


@blp.get("/cases/<int:case_id>")
@staff_endpoint(blp, 404, scope="cases:read")
@blp.response(200, CaseDetailSchema)
def get_case(case_id):
    """One case with the response that opened it and every step, oldest first."""
    return _detail(_case_or_404(case_id, _cx_user()))


def _done(case: Case) -> dict:
    db.session.commit()
    return _detail(case)


@blp.post("/cases/<int:case_id>/acknowledge")
@staff_endpoint(blp, 400, 404, 409, scope="cases:write")
@blp.arguments(EmptySchema(), required=False)
@blp.response(200, CaseDetailSchema)
def acknowledge(_data, case_id):
    """Take the case (409 if it is acknowledged or resolved already)."""
    user = _cx_user()
    case = _case_or_404(case_id, user)
    return _done(cases.acknowledge(case, actor=user, now=utcnow()))


@blp.post("/cases/<int:case_id>/contacts")
@staff_endpoint(blp, 400, 404, 409, scope="cases:write")
@blp.arguments(CaseContactSchema())
@blp.response(201, CaseDetailSchema)
def log_contact(data, case_id):
    """Log a contact attempt; the first one stops the escalation clock."""
    user = _cx_user()
    case = _case_or_404(case_id, user)
    return _done(
        cases.log_contact(
            case,
            actor=user,
            now=utcnow(),
            reached=data["reached"],
            channel=data["channel"],
            note=data.get("note"),
        )
    )


@blp.post("/cases/<int:case_id>/notes")
@staff_endpoint(blp, 400, 404, scope="cases:write")
@blp.arguments(CaseNoteSchema())
@blp.response(201, CaseDetailSchema)
def add_note(data, case_id):
    user = _cx_user()
    case = _case_or_404(case_id, user)
    return _done(cases.add_note(case, actor=user, now=utcnow(), note=data["note"]))


@blp.post("/cases/<int:case_id>/reassign")
@staff_endpoint(blp, 400, 404, 409, scope="cases:write")
@blp.arguments(CaseReassignSchema())
@blp.response(200, CaseDetailSchema)
def reassign(data, case_id):
    """Give the case to a person (`to_user`, a username) or a `department`: one of the two."""
    user = _cx_user()
    case = _case_or_404(case_id, user)
    to_user = None
    if data.get("to_user"):
        to_user = db.session.scalar(select(User).where(User.username == data["to_user"]))
        if to_user is None:
            abort(422, description=f"no user {data['to_user']!r}")
    return _done(
        cases.reassign(
            case,
            actor=user,
            now=utcnow(),
            to_user=to_user,
            department=data.get("department"),
            note=data.get("note"),
        )
    )


@blp.post("/cases/<int:case_id>/resolve")
@staff_endpoint(blp, 400, 404, 409, scope="cases:write")
@blp.arguments(CaseResolveSchema())
@blp.response(200, CaseDetailSchema)
def resolve(data, case_id):
    """Close the case with a 5P root cause, a reason code and the action taken (all required;
    409 `no_contact` before any contact attempt was logged). The customer then receives the
    recovery survey."""
    user = _cx_user()
    case = _case_or_404(case_id, user)
    return _done(
        cases.resolve(
            case,
            actor=user,
            now=utcnow(),
            root_cause=data["root_cause"],
            reason_code=data["reason_code"],
            action_taken=data["action_taken"],
        )
    )
