"""Alerts: evaluating a branch's rules, acknowledging, the escalation sweep, and managing the
rules. The only code that changes alerts and rules; every function takes `now`, flushes and
never commits (the caller's unit of work does).

Rules decided here (see also docs/architecture.md):

- An alert is raised when a rule's value reaches `raise_at` (value >= raise_at) and no alert
  of that rule and subject is open. It belongs to the branch's manager (the active
  `branch_manager` of the branch with the smallest id), who gets an e-mail through the outbox;
  with `ack_within_s` it must be acknowledged by `raised_at + ack_within_s`.
- Hysteresis: an open alert clears only when the value is at or below `clear_at`, and with
  `clear_after_s` only after it has stayed there that long (the `calming` step starts that
  clock, `relapsed` stops it). In between it stays open however the value moves: no flapping.
  "No evidence" (None: no counter open for the EWT, too few calls for the no-show rate, a
  subject that is gone) counts as calm.
- Acknowledging stops the escalation clock; the alert stays open until it clears.
- `escalate_due`: an alert still `raised` at `ack_due_at` goes to its owner's manager (level +
  1, e-mail with a dedupe key per alert, level and person), who has `ack_within_s` from the
  previous due time. An owner without an active manager keeps it: the clock stops.
- Every change publishes `alert.changed` (branch_id, alert_id, status) after the commit.
- Race-proof: at most one open alert per rule and subject is the unique partial index
  `uq_alerts_open`; the insert runs in a savepoint, and losing the race skips it. The open
  alerts of the branch are locked `FOR UPDATE` first, so two evaluations at once work one
  after the other on PostgreSQL (SQLite's `BEGIN IMMEDIATE` serializes the whole unit).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import event, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from ..accounts.models import User
from ..accounts.queries import branch_manager
from ..branches.models import Branch, Service
from ..core.errors import Conflict, InvalidInput
from ..core.events import in_transaction, publish
from ..notify.models import Channel
from ..notify.services import enqueue
from . import content
from .metrics import Reading, measure
from .models import (
    OPEN_STATUSES,
    Alert,
    AlertRule,
    AlertStatus,
    AlertStep,
    AlertStepKind,
    Metric,
)

log = logging.getLogger(__name__)
CHANGED = "alert.changed"
RAISED_KIND = "alert_raised"
ESCALATED_KIND = "alert_escalated"

# limits of a rule's values: (low, high) inclusive, per metric for the thresholds
DAY_S = 24 * 3600
THRESHOLD_LIMITS = {
    Metric.LONGEST_WAIT_S: (0, DAY_S),
    Metric.QUEUE_LENGTH: (0, 10_000),
    Metric.EWT_S: (0, DAY_S),
    Metric.IDLE_COUNTER_S: (0, DAY_S),
    Metric.NO_SHOW_RATE: (0, 1),
}
LIMITS = {
    "clear_after_s": (0, DAY_S),
    "ack_within_s": (60, 7 * DAY_S),
    "window_s": (300, DAY_S),
    "min_count": (1, 10_000),
}


# --- helpers -----------------------------------------------------------------------------------


def _step(session, alert: Alert, kind, now, *, actor=None, value=None, note=None, **data):
    step = AlertStep(
        alert=alert,
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        at=now,
        value=value,
        level=alert.level,
        note=note,
        data=data,
    )
    session.add(step)
    return step


_SENT = "queue_app.alerts.changed"


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_sent(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_SENT, None)


def _changed(session: Session, alert: Alert) -> None:
    """`alert.changed` after the commit (once per alert and status in a unit of work)."""
    key = (alert.id, alert.status.value)
    sent = session.info.setdefault(_SENT, set())
    if key in sent:
        return
    sent.add(key)
    publish(session, CHANGED, branch_id=alert.branch_id, alert_id=alert.id, status=key[1])


def _notify(session, alert: Alert, owner: User, *, now: datetime, escalated: bool) -> bool:
    if not owner.email:
        return False
    locale = content.pick_locale(owner.locale, alert.branch.locale)
    message = content.for_owner(alert, locale=locale, escalated=escalated)
    return (
        enqueue(
            ESCALATED_KIND if escalated else RAISED_KIND,
            channel=Channel.EMAIL,
            recipient=owner.email,
            subject=message.subject,
            body=message.body,
            locale=message.locale,
            dedupe_key=f"alert:{alert.id}:level:{alert.level}:owner:{owner.id}",
            now=now,
        )
        is not None
    )


def _calm(value: float | None, clear_at: float) -> bool:
    return value is None or value <= clear_at


# --- evaluation --------------------------------------------------------------------------------


def enabled_rules(session: Session, branch_id: int) -> list[AlertRule]:
    return list(
        session.scalars(
            select(AlertRule)
            .where(AlertRule.branch_id == branch_id, AlertRule.enabled.is_(True))
            .order_by(AlertRule.id)
        )
    )


def needs_evaluation(session: Session, branch_id: int) -> bool:
    """Whether the branch has an enabled rule or an open alert: one statement, no lock.

    The evaluation after every change (`receivers.Evaluator.run`) asks this first, as a reader
    whose transaction it then rolls back: a branch nothing watches (most of them) costs this
    one read instead of loading the branch, locking its open alerts and committing. False
    means `evaluate_branch` would have done nothing; an open alert whose rules were all
    disabled meanwhile counts (the evaluation clears it), as in the `evaluate_alerts` job.

    Race: the answer is a snapshot, as the rule read of `evaluate_branch` is (and a branch
    with no enabled rule and no open alert was never evaluated further). A rule created or
    enabled right after this read is seen by the branch's next change or, at the latest, by
    the minute job: as it was when committed right after the rule read. An alert committed
    after it was opened by another evaluation, of a rule that evaluation saw: the same as an
    alert committed after `_lock_open`, which does not see it either. A "yes" is only a
    go-ahead: the evaluation reads the rules and locks the open alerts again itself."""
    rules = select(AlertRule.id).where(
        AlertRule.branch_id == branch_id, AlertRule.enabled.is_(True)
    )
    alerts = select(Alert.id).where(Alert.branch_id == branch_id, Alert.status.in_(OPEN_STATUSES))
    return bool(session.scalar(select(or_(rules.exists(), alerts.exists()))))


def _lock_open(session: Session, branch_id: int) -> list[Alert]:
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.branch_id == branch_id, Alert.status.in_(OPEN_STATUSES))
            .order_by(Alert.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def evaluate_branch(session: Session, branch: Branch, now: datetime) -> list[Alert]:
    """Compute every enabled rule of `branch` from its live state at `now`; raise, update and
    clear its alerts. Returns the alerts raised, changed or cleared."""
    rules = enabled_rules(session, branch.id)
    open_alerts = _lock_open(session, branch.id)
    if not rules and not open_alerts:
        return []
    by_key = {(a.rule_id, a.subject): a for a in open_alerts}
    readings = measure(session, branch, rules, now)
    changed: list[Alert] = []
    for rule in rules:
        seen = set()
        for reading in readings.get(rule.id, ()):
            seen.add(reading.subject)
            alert = by_key.get((rule.id, reading.subject))
            if alert is None:
                if reading.value is not None and reading.value >= rule.raise_at:
                    alert = _raise(session, rule, branch, reading, now)
                    if alert is not None:
                        changed.append(alert)
            elif _update(session, alert, rule, reading.value, now):
                changed.append(alert)
        # open alerts of this rule whose subject is gone (a counter no longer serving it ...)
        for (rule_id, subject), alert in by_key.items():
            gone = rule_id == rule.id and subject not in seen
            if gone and _update(session, alert, rule, None, now):
                changed.append(alert)
    live = {r.id for r in rules}
    for alert in open_alerts:  # a rule disabled or deleted meanwhile: nothing watches it
        if alert.rule_id not in live and alert.is_open:
            _clear(session, alert, now, note="rule disabled or deleted")
            changed.append(alert)
    session.flush()
    for alert in changed:
        _changed(session, alert)
    return changed


def _raise(session, rule: AlertRule, branch: Branch, reading: Reading, now) -> Alert | None:
    owner = branch_manager(branch.id)
    alert = Alert(
        rule_id=rule.id,
        subject=reading.subject,
        branch_id=branch.id,
        service_id=reading.service_id,
        counter_id=reading.counter_id,
        metric=rule.metric,
        threshold=rule.raise_at,
        clear_at=rule.clear_at,
        value_raised=reading.value,
        current_value=reading.value,
        peak_value=reading.value,
        status=AlertStatus.RAISED,
        level=1,
        owner_id=owner.id if owner is not None else None,
        raised_at=now,
        ack_due_at=(
            now + timedelta(seconds=rule.ack_within_s)
            if owner is not None and rule.ack_within_s
            else None
        ),
        evaluated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(alert)
            session.flush()
    except IntegrityError:
        # another evaluation raised it first (uq_alerts_open): theirs stands
        if alert in session:
            session.expunge(alert)
        log.info("rule %s, %s: raised by another evaluation", rule.id, reading.subject)
        return None
    _step(session, alert, AlertStepKind.RAISED, now, value=reading.value, threshold=rule.raise_at)
    # inside the unit of work: webhook deliveries (webhooks/receivers.py)
    in_transaction("alert.raised", alert=alert, session=session, now=now)
    if owner is not None:
        _notify(session, alert, owner, now=now, escalated=False)
    return alert


def _update(session, alert: Alert, rule: AlertRule, value: float | None, now) -> bool:
    """The open alert's new value; True when anything the dashboard shows changed."""
    before = (alert.current_value, alert.status, alert.calm_since)
    alert.current_value = value
    alert.evaluated_at = now
    alert.clear_at = rule.clear_at
    if value is not None and value > alert.peak_value:
        alert.peak_value = value
    if _calm(value, rule.clear_at):
        if alert.calm_since is None:
            alert.calm_since = now
            if rule.clear_after_s:
                _step(session, alert, AlertStepKind.CALMING, now, value=value)
        if (now - alert.calm_since).total_seconds() >= rule.clear_after_s:
            _clear(session, alert, now, value=value)
    elif alert.calm_since is not None:
        alert.calm_since = None
        _step(session, alert, AlertStepKind.RELAPSED, now, value=value)
    return before != (alert.current_value, alert.status, alert.calm_since)


def _clear(session, alert: Alert, now, *, value=None, note=None) -> None:
    alert.status = AlertStatus.CLEARED
    alert.cleared_at = now
    alert.ack_due_at = None
    alert.calm_since = alert.calm_since or now
    _step(session, alert, AlertStepKind.CLEARED, now, value=value, note=note)


# --- acknowledging -----------------------------------------------------------------------------


def acknowledge(alert: Alert, user: User, now: datetime, note: str | None = None) -> Alert:
    """`user` has seen the alert: the escalation clock stops; it stays open until it clears.
    409 when it is acknowledged or cleared already."""
    session = object_session(alert)
    alert = session.scalar(
        select(Alert)
        .where(Alert.id == alert.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if alert.status == AlertStatus.CLEARED:
        raise Conflict("the alert has cleared already", "alert_cleared")
    if alert.status == AlertStatus.ACKNOWLEDGED:
        raise Conflict("the alert is acknowledged already", "already_acknowledged")
    note = (note or "").strip() or None
    if note is not None and len(note) > 2000:
        raise InvalidInput("the note is too long (2000 characters at most)", "note_too_long")
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at = now
    alert.acknowledged_by_id = user.id
    alert.ack_due_at = None
    if alert.owner_id is None:
        alert.owner_id = user.id
    _step(session, alert, AlertStepKind.ACKNOWLEDGED, now, actor=user, note=note)
    session.flush()
    _changed(session, alert)
    return alert


# --- the escalation sweep ----------------------------------------------------------------------


@dataclass
class Escalation:
    alert_id: int
    branch: str
    from_level: int
    to_level: int | None  # None: no manager above the owner, the clock stopped
    owner: str | None
    notified: list[str]


def escalate_due(session: Session, now: datetime, *, limit: int = 200) -> list[Escalation]:
    """Give every alert still unacknowledged at its `ack_due_at` to its owner's manager.

    The due rows are claimed `FOR UPDATE SKIP LOCKED` (PostgreSQL) and re-checked once locked,
    so two sweeps at once never move an alert twice; the e-mails carry a dedupe key per alert,
    level and person."""
    query = (
        select(Alert)
        .where(
            Alert.status == AlertStatus.RAISED,
            Alert.ack_due_at.is_not(None),
            Alert.ack_due_at <= now,
        )
        .order_by(Alert.ack_due_at, Alert.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    done = []
    for alert in session.scalars(query).all():
        if not (
            alert.status == AlertStatus.RAISED
            and alert.ack_due_at is not None
            and alert.ack_due_at <= now
        ):
            continue
        done.append(_escalate(session, alert, now))
    session.flush()
    return done


def _escalate(session: Session, alert: Alert, now: datetime) -> Escalation:
    owner = session.get(User, alert.owner_id) if alert.owner_id else None
    manager = session.get(User, owner.manager_id) if owner and owner.manager_id else None
    if manager is not None and not manager.active:
        manager = None
    change = Escalation(alert.id, alert.branch.code, alert.level, None, None, [])
    if manager is None:
        alert.ack_due_at = None  # nobody above: the owner keeps it
        change.owner = owner.username if owner else None
        return change
    rule = session.get(AlertRule, alert.rule_id) if alert.rule_id else None
    previous_due = alert.ack_due_at
    alert.level += 1
    alert.owner_id = manager.id
    alert.escalated_at = now
    alert.ack_due_at = (
        previous_due + timedelta(seconds=rule.ack_within_s)
        if rule is not None and rule.ack_within_s
        else None
    )
    _step(
        session,
        alert,
        AlertStepKind.ESCALATED,
        now,
        value=alert.current_value,
        **{"from": change.from_level, "to": alert.level, "owner": manager.id},
    )
    change.to_level, change.owner = alert.level, manager.username
    if _notify(session, alert, manager, now=now, escalated=True):
        change.notified.append(manager.email)
    session.flush()
    _changed(session, alert)
    return change


# --- managing rules ----------------------------------------------------------------------------


def _number(name: str, value, low, high, *, integer: bool = False):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number", f"invalid_{name}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number", f"invalid_{name}")
    if integer and value != int(value):
        raise InvalidInput(f"{name} must be a whole number", f"invalid_{name}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", f"invalid_{name}")
    return int(value) if integer else float(value)


def _check(rule_values: dict) -> dict:
    """Validate a rule's complete values; returns them normalised (InvalidInput: 422)."""
    try:
        metric = Metric(rule_values["metric"])
    except (ValueError, KeyError):
        raise InvalidInput(
            f"metric must be one of {', '.join(m.value for m in Metric)}", "invalid_metric"
        ) from None
    low, high = THRESHOLD_LIMITS[metric]
    whole = metric == Metric.QUEUE_LENGTH
    values = dict(rule_values, metric=metric)
    for name in ("raise_at", "clear_at"):
        if values.get(name) is None:
            raise InvalidInput(f"{name} is required", f"missing_{name}")
        values[name] = _number(name, values[name], low, high, integer=whole)
    if values["raise_at"] <= 0:
        raise InvalidInput("raise_at must be above 0", "invalid_raise_at")
    if values["clear_at"] > values["raise_at"]:
        raise InvalidInput(
            "clear_at must be at or below raise_at (the alert clears below where it is raised)",
            "invalid_hysteresis",
        )
    for name, (lo, hi) in LIMITS.items():
        if name == "ack_within_s" and values.get(name) is None:
            values[name] = None
            continue
        values[name] = _number(name, values[name], lo, hi, integer=True)
    if not isinstance(values.get("enabled"), bool):
        raise InvalidInput("enabled must be true or false", "invalid_enabled")
    return values


RULE_DEFAULTS = {
    "clear_after_s": 0,
    "ack_within_s": 600,
    "window_s": 3600,
    "min_count": 10,
    "enabled": True,
}
EDITABLE = (
    "raise_at",
    "clear_at",
    "clear_after_s",
    "ack_within_s",
    "window_s",
    "min_count",
    "enabled",
)


def _duplicate(session, branch_id, service_id, metric, rule_id=None) -> bool:
    query = select(AlertRule.id).where(
        AlertRule.branch_id == branch_id,
        AlertRule.metric == metric,
        AlertRule.service_id.is_(None)
        if service_id is None
        else AlertRule.service_id == service_id,
    )
    if rule_id is not None:
        query = query.where(AlertRule.id != rule_id)
    return session.scalar(query.limit(1)) is not None


def create_rule(
    session: Session,
    branch: Branch,
    *,
    metric: str,
    raise_at,
    clear_at,
    now: datetime,
    service: Service | None = None,
    **options,
) -> AlertRule:
    """A new rule (422 for a bad value, 409 when the branch has one for that metric and
    service already)."""
    unknown = set(options) - set(RULE_DEFAULTS)
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", "unknown_field")
    if service is not None and service.branch_id != branch.id:
        raise InvalidInput(
            f"branch {branch.code} has no service {service.code!r}", "unknown_service"
        )
    values = _check(
        {**RULE_DEFAULTS, **options, "metric": metric, "raise_at": raise_at, "clear_at": clear_at}
    )
    sid = service.id if service is not None else None
    if _duplicate(session, branch.id, sid, values["metric"]):
        raise Conflict(
            f"branch {branch.code} has a {values['metric'].value} rule for "
            f"{service.code if service else 'the whole branch'} already",
            "rule_exists",
        )
    rule = AlertRule(
        branch_id=branch.id,
        service_id=sid,
        created_at=now,
        updated_at=now,
        **values,
    )
    session.add(rule)
    session.flush()
    return rule


def update_rule(rule: AlertRule, *, now: datetime, **changes) -> list[str]:
    """Change a rule's thresholds or options (metric and service stay: a new rule for those).
    Returns the names of what changed. Disabling it clears its open alerts."""
    session = object_session(rule)
    fixed = {"metric", "service", "service_id", "branch", "branch_id"} & set(changes)
    if fixed:
        raise InvalidInput(
            f"{', '.join(sorted(fixed))} cannot change: delete the rule and create another",
            "immutable_field",
        )
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", "unknown_field")
    current = {name: getattr(rule, name) for name in EDITABLE}
    values = _check({**current, **changes, "metric": rule.metric})
    done = [name for name in EDITABLE if values[name] != current[name]]
    for name in done:
        setattr(rule, name, values[name])
    if done:
        rule.updated_at = now
    if "enabled" in done and not rule.enabled:
        _clear_rule_alerts(session, rule, now, note="rule disabled")
    session.flush()
    return done


def delete_rule(rule: AlertRule, *, now: datetime) -> None:
    """Delete a rule: its open alerts clear, its alerts stay (without their rule)."""
    session = object_session(rule)
    _clear_rule_alerts(session, rule, now, note="rule deleted")
    session.flush()
    session.execute(
        update(Alert)
        .where(Alert.rule_id == rule.id)
        .values(rule_id=None)
        .execution_options(synchronize_session="fetch")
    )
    session.delete(rule)
    session.flush()


def _clear_rule_alerts(session, rule: AlertRule, now, *, note: str) -> None:
    for alert in session.scalars(
        select(Alert)
        .where(Alert.rule_id == rule.id, Alert.status.in_(OPEN_STATUSES))
        .with_for_update()
        .execution_options(populate_existing=True)
    ):
        _clear(session, alert, now, value=alert.current_value, note=note)
        session.flush()
        _changed(session, alert)
