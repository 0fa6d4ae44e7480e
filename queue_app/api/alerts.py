"""Alert thresholds: a branch's rules, its alerts and acknowledging them. Admins, and branch
managers for their own branches; CX agents and executives read the alerts of the branches
they see on the live dashboard (`alerts/services.py` holds the rules of the game)."""

from __future__ import annotations

from flask import abort, g
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from ..accounts.models import Role, User
from ..alerts import queries
from ..alerts import services as alerts
from ..alerts.models import Alert, AlertRule, AlertStatus, Metric
from ..branches.models import Branch
from ..core.types import utcnow
from ..dashboard import scope
from ..extensions import db
from . import presenters
from .auth import staff_endpoint
from .lookups import MAX_ID, branch_or_404, service_in_body
from .parsing import Blueprint
from .schemas import StrictBoolean, Text

blp = Blueprint("alerts", __name__, description="Alert thresholds of live management")

STATUSES = ("open", *(s.value for s in AlertStatus), "all")


class Number(fields.Float):
    """A JSON number (not a string, not a boolean); finite."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


def _seconds(description: str, **kwargs):
    return fields.Integer(strict=True, metadata={"description": description}, **kwargs)


class _RuleOptions(Schema):
    raise_at = Number(
        metadata={
            "description": "raised when the value reaches this: seconds (waits, idle), "
            "tickets (queue_length) or a share 0..1 (no_show_rate)"
        }
    )
    clear_at = Number(
        metadata={"description": "cleared only at or below this (<= raise_at): hysteresis"}
    )
    clear_after_s = _seconds("and only after staying there this long (0: at once)")
    ack_within_s = _seconds(
        "escalated to the owner's manager when not acknowledged this long (null: never)",
        allow_none=True,
    )
    window_s = _seconds("no_show_rate: the calls that ended in the last window_s seconds")
    min_count = _seconds("no_show_rate: no value below this many calls")
    enabled = StrictBoolean()


class RuleCreateSchema(_RuleOptions):
    metric = fields.String(required=True, validate=validate.OneOf([m.value for m in Metric]))
    service = Text(
        validate=validate.Length(min=1, max=32),
        allow_none=True,
        metadata={"description": "service code; absent or null: the branch as a whole"},
    )


class RulePatchSchema(_RuleOptions):
    pass


class RuleSchema(Schema):
    id = fields.Integer()
    branch = fields.String()
    service = fields.String(allow_none=True)
    metric = fields.String()
    raise_at = fields.Float()
    clear_at = fields.Float()
    clear_after_s = fields.Integer()
    ack_within_s = fields.Integer(allow_none=True)
    window_s = fields.Integer()
    min_count = fields.Integer()
    enabled = fields.Boolean()


class RuleListSchema(Schema):
    items = fields.List(fields.Nested(RuleSchema))


class AlertQuerySchema(Schema):
    status = fields.String(load_default="open", validate=validate.OneOf(STATUSES))
    branch = Text(validate=validate.Length(min=1, max=16), metadata={"description": "code"})


class UserRefSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    name = fields.String()


class AlertStepSchema(Schema):
    kind = fields.String()
    at = fields.String()
    level = fields.Integer()
    value = fields.Float(allow_none=True)
    actor = fields.Nested(UserRefSchema, allow_none=True)
    note = fields.String(allow_none=True)
    data = fields.Dict()


class AlertSchema(Schema):
    id = fields.Integer()
    rule_id = fields.Integer(allow_none=True)
    branch_id = fields.Integer()
    branch = fields.String()
    branch_name = fields.String()
    service = fields.String(allow_none=True)
    service_name = fields.String(allow_none=True)
    counter_id = fields.Integer(allow_none=True)
    counter = fields.String(allow_none=True)
    metric = fields.String()
    status = fields.String()
    level = fields.Integer()
    value = fields.Float(metadata={"description": "the value when it was raised"})
    current_value = fields.Float(allow_none=True)
    peak_value = fields.Float()
    threshold = fields.Float()
    clear_at = fields.Float()
    owner = fields.Nested(UserRefSchema, allow_none=True)
    raised_at = fields.String()
    ack_due_at = fields.String(allow_none=True)
    acknowledged_at = fields.String(allow_none=True)
    acknowledged_by = fields.Nested(UserRefSchema, allow_none=True)
    escalated_at = fields.String(allow_none=True)
    cleared_at = fields.String(allow_none=True)
    message = fields.String()
    steps = fields.List(fields.Nested(AlertStepSchema))


class AlertListSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema))


class AcknowledgeSchema(Schema):
    note = Text(multiline=True, allow_none=True, validate=validate.Length(max=2000))


def may_manage(user: User, branch: Branch) -> bool:
    """Admins, and the branch managers of `branch`."""
    return user.active and (
        user.role == Role.ADMIN or (user.role == Role.BRANCH_MANAGER and user.belongs_to(branch))
    )


def may_read(user: User, branch: Branch) -> bool:
    """Who may read a branch's alerts: whoever may manage them, and whoever sees the branch on
    the live dashboard, where its alerts show (CX agents and executives across the network:
    `dashboard.scope`)."""
    return may_manage(user, branch) or scope.may_see(user, branch)


def _managed_branch(code: str) -> Branch:
    branch = branch_or_404(code)
    if not may_manage(g.user, branch):
        abort(403, description=f"{g.user.username} may not manage the alerts of {branch.code}")
    return branch


def _present_rule(rule: AlertRule) -> dict:
    return {
        "id": rule.id,
        "branch": rule.branch.code,
        "service": rule.service.code if rule.service is not None else None,
        "metric": rule.metric.value,
        "raise_at": rule.raise_at,
        "clear_at": rule.clear_at,
        "clear_after_s": rule.clear_after_s,
        "ack_within_s": rule.ack_within_s,
        "window_s": rule.window_s,
        "min_count": rule.min_count,
        "enabled": rule.enabled,
    }


def _present_alert(alert: Alert, *, steps: bool = False) -> dict:
    data = queries.alert_payload(alert, presenters.language())
    if steps:
        data["steps"] = [
            queries.step_payload(s, alert) for s in queries.alert_timeline(db.session, alert.id)
        ]
    return data


def _rule_or_404(rule_id: int) -> AlertRule:
    rule = db.session.get(AlertRule, rule_id) if 1 <= rule_id <= MAX_ID else None
    if rule is None:
        abort(404, description=f"no alert rule {rule_id}")
    if not may_manage(g.user, rule.branch):
        abort(403, description=f"{g.user.username} may not manage the alerts of {rule.branch.code}")
    return rule


@blp.get("/branches/<code>/alert-rules")
@staff_endpoint(blp, 404, scope="alerts:read")
@blp.response(200, RuleListSchema)
def list_rules(code):
    """The branch's alert rules (the branch as a whole first, then per service)."""
    branch = _managed_branch(code)
    return {"items": [_present_rule(r) for r in queries.rules_of(db.session, branch.id)]}


@blp.post("/branches/<code>/alert-rules")
@staff_endpoint(blp, 400, 404, 409, 422, scope="alerts:write")
@blp.arguments(RuleCreateSchema())
@blp.response(201, RuleSchema)
def create_rule(data, code):
    """A new rule: `metric`, `raise_at` and `clear_at` required. 422 for a value out of range
    (e.g. `clear_at` above `raise_at`, a share above 1) or a service the branch does not have;
    409 `rule_exists` when the branch has a rule for that metric and service already."""
    branch = _managed_branch(code)
    service = service_in_body(branch, data.pop("service")) if data.get("service") else None
    data.pop("service", None)
    for name in ("raise_at", "clear_at"):
        if name not in data:
            abort(422, description=f"{name} is required")
    rule = alerts.create_rule(db.session, branch, service=service, now=utcnow(), **data)
    db.session.commit()
    return _present_rule(rule)


@blp.patch("/alert-rules/<int:rule_id>")
@staff_endpoint(blp, 400, 404, 422, scope="alerts:write")
@blp.arguments(RulePatchSchema())
@blp.response(200, RuleSchema)
def patch_rule(data, rule_id):
    """Change a rule's thresholds or options; what the body leaves out stays. Metric and
    service cannot change. Disabling a rule clears its open alerts."""
    rule = _rule_or_404(rule_id)
    alerts.update_rule(rule, now=utcnow(), **data)
    db.session.commit()
    return _present_rule(rule)


@blp.delete("/alert-rules/<int:rule_id>")
@staff_endpoint(blp, 404, scope="alerts:write")
@blp.response(204)
def delete_rule(rule_id):
    """Delete a rule; its open alerts clear, its past alerts stay."""
    rule = _rule_or_404(rule_id)
    alerts.delete_rule(rule, now=utcnow())
    db.session.commit()
    return ""


@blp.get("/alerts")
@staff_endpoint(blp, 404, scope="alerts:read")
@blp.arguments(AlertQuerySchema(), location="query")
@blp.response(200, AlertListSchema)
def list_alerts(args):
    """Alerts, the newest first (at most 200): `status` open (default: raised or
    acknowledged), raised, acknowledged, cleared or all; `branch` a code. Admins, CX agents
    and executives see every branch, branch managers theirs (403 for another branch's
    filter), as on the live dashboard; acknowledging stays with admins and managers."""
    user = g.user
    if args.get("branch"):
        branch = branch_or_404(args["branch"])
        if not may_read(user, branch):
            abort(403, description=f"{user.username} may not see the alerts of {branch.code}")
        branch_ids = [branch.id]
    elif scope.sees_network(user):  # admins, CX agents, executives
        branch_ids = None
    elif user.active and user.role == Role.BRANCH_MANAGER:
        branch_ids = [b.id for b in user.branches]
    else:
        abort(403, description=f"{user.username} may not see alerts")
    items = queries.list_alerts(db.session, branch_ids, status=args["status"])
    return {"items": [_present_alert(a) for a in items]}


@blp.get("/alerts/<int:alert_id>")
@staff_endpoint(blp, 404, scope="alerts:read")
@blp.response(200, AlertSchema)
def get_alert(alert_id):
    """One alert with its timeline, oldest step first."""
    return _present_alert(_alert_or_404(alert_id, may=may_read), steps=True)


def _alert_or_404(alert_id: int, may=may_manage) -> Alert:
    alert = (
        db.session.scalar(select(Alert).where(Alert.id == alert_id))
        if 1 <= alert_id <= MAX_ID
        else None
    )
    if alert is None:
        abort(404, description=f"no alert {alert_id}")
    if not may(g.user, alert.branch):
        abort(403, description=f"{g.user.username} may not see the alerts of {alert.branch.code}")
    return alert


@blp.post("/alerts/<int:alert_id>/acknowledge")
@staff_endpoint(blp, 400, 404, 409, 422, scope="alerts:write")
@blp.arguments(AcknowledgeSchema(), required=False)
@blp.response(200, AlertSchema)
def acknowledge(data, alert_id):
    """Acknowledge an alert: the escalation stops; it stays open until it clears by itself.
    409 when it is acknowledged or cleared already."""
    alert = _alert_or_404(alert_id)
    alerts.acknowledge(alert, g.user, utcnow(), (data or {}).get("note"))
    db.session.commit()
    return _present_alert(alert, steps=True)
