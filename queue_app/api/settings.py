"""A branch's pre-arrival settings: the bookable share of each service, the appointment
check-in window, late arrivals, and the remote queue (`branches/settings.py`).

Admins, and branch managers for their own branches. The check-in window is given in whole
minutes here; the answer also carries the stored seconds (`check_in_early_s`, ...).

Each counter's plan (`branches/plans.py`: hours and breaks per weekday, local times) is under
`counters`, by counter name; a PATCH replaces the plans of the counters it names.
"""

from flask import abort, g
from flask_smorest import abort as abort_with
from marshmallow import Schema, fields, validate

from ..branches import plans, settings
from ..branches.models import Branch, LateArrival
from ..core.types import utcnow
from ..extensions import db
from . import presenters
from .auth import staff_endpoint
from .lookups import branch_or_404
from .parsing import Blueprint
from .schemas import StrictBoolean, Text

blp = Blueprint(
    "settings", __name__, description="Branch settings: bookable share, check-in, remote queue"
)

MAX_CHECK_IN_MIN = settings.MAX_CHECK_IN_S // 60
MINUTE_FIELDS = {"check_in_early_min": "check_in_early_s", "check_in_late_min": "check_in_late_s"}


def _range(name: str):
    low, high = settings.LIMITS[name]
    return validate.Range(min=low, max=high)


class ServiceSettingsSchema(Schema):
    bookable_percent = fields.Integer(
        strict=True,
        validate=_range("bookable_percent"),
        metadata={
            "description": "share (0-100) of the counters serving the service that is "
            "bookable per slot; the rest is kept for walk-ins"
        },
    )


class ServiceSettingsOutSchema(ServiceSettingsSchema):
    name = fields.String()
    active = fields.Boolean()
    counters = fields.Integer(metadata={"description": "counters that serve the service"})
    slot_capacity = fields.Integer(
        metadata={"description": "bookable places per slot: counters x share, rounded down"}
    )


class _BranchSettingsFields(Schema):
    check_in_early_min = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=MAX_CHECK_IN_MIN),
        metadata={"description": "check-in opens this many minutes before the appointment"},
    )
    check_in_late_min = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=MAX_CHECK_IN_MIN),
        metadata={"description": "check-in stays open this many minutes after its start"},
    )
    late_arrival = fields.String(
        validate=validate.OneOf([m.value for m in LateArrival]),
        metadata={"description": "a later arrival: `walk_in` (queued as one) or `refuse`"},
    )
    remote_intake = StrictBoolean(
        metadata={"description": "customers may join the queue from their phone"}
    )
    remote_move_back_places = fields.Integer(
        strict=True,
        validate=_range("remote_move_back_places"),
        metadata={"description": "places an unconfirmed remote ticket goes back when called"},
    )
    remote_move_back_limit = fields.Integer(
        strict=True,
        validate=_range("remote_move_back_limit"),
        metadata={"description": "how often it goes back before it lapses (0: never)"},
    )


PLAN_DESCRIPTION = (
    "the counter's plan per weekday (mon .. sun), local times HH:MM in the branch's zone: "
    '{"mon": {"hours": ["08:30", "14:00"], "breaks": [["12:00", "12:30"]]}}; a day without '
    "hours is staffed during the branch's opening hours; {} or null: no plan"
)


class CounterSettingsSchema(Schema):
    plan = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(allow_none=True),
        allow_none=True,
        required=True,
        metadata={"description": PLAN_DESCRIPTION},
    )


class SettingsPatchSchema(_BranchSettingsFields):
    services = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=32)),
        values=fields.Nested(ServiceSettingsSchema),
        metadata={"description": 'per service code, e.g. {"teller": {"bookable_percent": 40}}'},
    )
    counters = fields.Dict(
        keys=Text(validate=validate.Length(min=1, max=40)),
        values=fields.Nested(CounterSettingsSchema),
        metadata={"description": 'per counter name, e.g. {"Teller 1": {"plan": {...}}}'},
    )


class ChangeSchema(Schema):
    field = fields.String()
    service = fields.String(allow_none=True)
    old = fields.Raw()
    new = fields.Raw()


class SettingsSchema(_BranchSettingsFields):
    branch = fields.String()
    check_in_early_s = fields.Integer()
    check_in_late_s = fields.Integer()
    services = fields.Dict(keys=fields.String(), values=fields.Nested(ServiceSettingsOutSchema))
    counters = fields.Dict(keys=fields.String(), values=fields.Nested(CounterSettingsSchema))


class SettingsChangedSchema(SettingsSchema):
    changes = fields.List(
        fields.Nested(ChangeSchema),
        metadata={"description": "what this request changed (seconds for the check-in window)"},
    )


def _minutes(seconds: int) -> int:
    return round(seconds / 60)


def _present(branch: Branch) -> dict:
    values = settings.pre_arrival_settings(branch)
    locale = presenters.language()
    body = {"branch": branch.code, **{k: v for k, v in values.items() if k != "services"}}
    for name, column in MINUTE_FIELDS.items():
        body[name] = _minutes(values[column])
    body["services"] = {
        row.service.code: {
            "name": row.service.display_name(locale),
            "active": row.service.active,
            "bookable_percent": row.service.bookable_percent,
            "counters": row.counters,
            "slot_capacity": row.slot_capacity,
        }
        for row in settings.bookable_shares(branch)
    }
    body["counters"] = {c.name: {"plan": plans.normalise_plan(c.plan)} for c in branch.counters}
    return body


def _managed_branch(code: str) -> Branch:
    branch = branch_or_404(code)
    if not settings.can_manage_settings(g.user, branch):
        abort(403, description=f"{g.user.username} may not change the settings of {branch.code}")
    return branch


def _nested(problems: dict[str, str]) -> dict:
    """{"services.teller.bookable_percent": "..."} -> {"services": {"teller": {...: [...]}}}"""
    tree: dict = {}
    for path, problem in problems.items():
        for api_name, column in MINUTE_FIELDS.items():
            path = api_name if path == column else path
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [problem]
    return tree


@blp.get("/branches/<code>/settings")
@staff_endpoint(blp, 404, scope="settings:read")
@blp.response(200, SettingsSchema)
def get_settings(code):
    """The branch's pre-arrival settings and, per service, its bookable share and what that
    makes per slot. Admins and the branch's managers (403 for anyone else)."""
    return _present(_managed_branch(code))


@blp.patch("/branches/<code>/settings")
@staff_endpoint(blp, 400, 404, 422, scope="settings:write")
@blp.arguments(SettingsPatchSchema())
@blp.response(200, SettingsChangedSchema)
def patch_settings(data, code):
    """Change any of the settings; what the body leaves out stays. All or nothing: 422
    `invalid_settings` (with `fields`) for a value out of range or a service the branch does
    not have. The answer is the settings after the change with `changes`, the list of what
    really changed. Admins and the branch's managers (403 for anyone else)."""
    branch = _managed_branch(code)
    changes = {}
    for name, value in data.items():
        if name in MINUTE_FIELDS:
            changes[MINUTE_FIELDS[name]] = value * 60
        elif name not in ("services", "counters"):
            changes[name] = value
    counters = {c.name: c for c in branch.counters}
    unknown = [name for name in data.get("counters", {}) if name not in counters]
    if unknown:
        abort_with(
            422,
            messages={"counters": {n: ["is not a counter of this branch"] for n in unknown}},
            code=settings.InvalidSettings.code,
        )
    for name, value in data.get("counters", {}).items():
        problems = plans.check_plan(value["plan"])
        if problems:
            abort_with(
                422,
                messages={"counters": {name: {"plan": _nested(problems)}}},
                code=settings.InvalidSettings.code,
            )
    try:
        now = utcnow()
        done = settings.update_pre_arrival_settings(
            branch, actor=g.user, now=now, services=data.get("services"), **changes
        )
        for name, value in data.get("counters", {}).items():
            done += plans.set_counter_plan(counters[name], value["plan"], actor=g.user, now=now)
    except plans.InvalidPlan as error:
        db.session.rollback()
        abort_with(
            422,
            messages={"counters": {error.counter: {"plan": _nested(error.problems)}}},
            code=error.code,
        )
    except settings.InvalidSettings as error:
        db.session.rollback()
        abort_with(422, messages=_nested(error.fields), code=error.code)
    db.session.commit()
    return {**_present(branch), "changes": [c.as_dict() for c in done]}
