"""Cases: opening one from an unhappy response, the work on it, the escalation sweep and the
recovery survey. The only code that changes cases; every function takes `now`, flushes and
never commits (the caller's unit of work does).

Rules decided here (see also docs/architecture.md):

- A response opens a case when any criterion of its touchpoint's survey (`survey_for`) holds:
  NPS <= `escalate_nps_max`, CSAT <= `escalate_csat_max`, CES <= `escalate_ces_max` (a None
  threshold is no criterion), one of `escalate_reasons` chosen, one of `escalate_keywords` in
  the comment (case-insensitive, whole words). At most one case per response.
- Level 1 belongs to the survey's `owner_id`, else the branch's manager (the active
  `branch_manager` of the branch with the smallest id: deterministic).
- The first logged contact attempt, reached or not, stops the escalation clock
  (`first_contact_at`, `due_at = None`); logging a contact also acknowledges an open case.
- A case is resolved only after at least one contact attempt (409 `no_contact`): the ladder
  exists to make sure the customer is called back, and a case closed without a call would
  hide exactly that. Root cause (5P), reason code and action taken are all required (422).
- After resolution the customer gets the recovery survey (a signed link, `links.py`); an
  answer at or below the touchpoint's `escalate_nps_max` reopens the case at level 1 with a
  fresh due time (and a running clock: `first_contact_at` is cleared, the old one stays in the
  steps).
- Illegal steps (acknowledging twice, working a resolved case, ...) raise `Conflict` (409).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select

from ..accounts.models import CX_ROLES, Role, User
from ..accounts.queries import branch_manager
from ..core.errors import Conflict, InvalidInput
from ..core.events import in_transaction
from ..customers.models import Customer
from ..extensions import db
from ..feedback.models import FeedbackResponse, SurveyConfig
from ..feedback.questions import REASONS, survey_for
from ..notify.models import Channel
from ..notify.services import channel_chain, enqueue
from . import content, ladder
from .links import recovery_url
from .models import Case, CaseStatus, CaseStep, RootCause, StepKind

CONTACT_CHANNELS = ("phone", "whatsapp", "sms", "email", "visit")
# the reason codes a case is closed with: the customers' own reasons, or another one
CASE_REASON_CODES = (*REASONS, "other")
DEFAULT_UNHAPPY_NPS = 6  # a detractor (DESIGN.md), when the touchpoint has no NPS threshold
PROMOTER_NPS = 9

OPENED_KIND = "case_opened"
ESCALATED_KIND = "case_escalated"
EXECUTIVE_KIND = "case_escalated_executive"
RECOVERY_KIND = "case_recovery_survey"

WORKING = (CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED)


# --- opening -----------------------------------------------------------------------------------


def _has_word(text: str, word: str) -> bool:
    word = word.strip()
    if not word:
        return False
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def triggers_of(response: FeedbackResponse, survey: SurveyConfig) -> list[str]:
    """Which escalation criteria of `survey` the response meets, e.g. ["nps<=6"]."""
    found = []
    for name, threshold in (
        ("nps", survey.escalate_nps_max),
        ("csat", survey.escalate_csat_max),
        ("ces", survey.escalate_ces_max),
    ):
        value = getattr(response, name)
        if threshold is not None and value is not None and value <= threshold:
            found.append(f"{name}<={threshold}")
    chosen = set(response.reasons or ())
    found += [f"reason:{r}" for r in (survey.escalate_reasons or ()) if r in chosen]
    comment = response.comment or ""
    found += [f"keyword:{w}" for w in (survey.escalate_keywords or ()) if _has_word(comment, w)]
    return found


def level_one_owner(branch_id: int, survey: SurveyConfig) -> User | None:
    if survey.owner_id is not None:
        owner = db.session.get(User, survey.owner_id)
        if owner is not None and owner.active:
            return owner
    return branch_manager(branch_id)


def _step(case: Case, kind: StepKind, actor: User | None, now: datetime, note=None, **data):
    step = CaseStep(
        case=case,
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        at=now,
        level=case.level,
        note=note,
        data=data,
    )
    db.session.add(step)
    return step


def open_case_for(response: FeedbackResponse, *, now: datetime) -> Case | None:
    """The case of an unhappy response (None when no criterion holds). Idempotent."""
    existing = db.session.scalar(select(Case).where(Case.response_id == response.id))
    if existing is not None:
        return existing
    survey = survey_for(response.branch_id, response.service_id)
    triggers = triggers_of(response, survey)
    if not triggers:
        return None
    owner = level_one_owner(response.branch_id, survey)
    case = Case(
        response_id=response.id,
        ticket_id=response.ticket_id,
        branch_id=response.branch_id,
        service_id=response.service_id,
        customer_id=response.customer_id,
        level=1,
        status=CaseStatus.OPEN,
        owner_id=owner.id if owner is not None else None,
        triggers=triggers,
        opened_at=now,
    )
    db.session.add(case)
    db.session.flush()
    case.due_at = ladder.next_due(case.branch, 1, now)
    _step(case, StepKind.OPENED, None, now, triggers=triggers)
    if owner is not None:
        _notify_owner(case, owner, now=now, escalated=False)
    db.session.flush()
    return case


# --- the work on a case ------------------------------------------------------------------------


def _working(case: Case) -> None:
    if case.status == CaseStatus.RESOLVED:
        raise Conflict("the case is resolved", "case_resolved")


def acknowledge(case: Case, *, actor: User, now: datetime) -> Case:
    """The owner (or whoever works it) has taken the case."""
    _working(case)
    if case.status != CaseStatus.OPEN:
        raise Conflict("the case is acknowledged already", "already_acknowledged")
    case.status = CaseStatus.ACKNOWLEDGED
    if case.owner_id is None:
        case.owner_id = actor.id
    _step(case, StepKind.ACKNOWLEDGED, actor, now)
    db.session.flush()
    return case


def log_contact(
    case: Case, *, actor: User, now: datetime, reached: bool, channel: str, note: str | None = None
) -> Case:
    """A contact attempt; the first one stops the escalation clock."""
    _working(case)
    if channel not in CONTACT_CHANNELS:
        raise InvalidInput(
            f"channel must be one of {', '.join(CONTACT_CHANNELS)}", "invalid_channel"
        )
    if case.first_contact_at is None:
        case.first_contact_at = now
        case.due_at = None
    if case.status == CaseStatus.OPEN:
        case.status = CaseStatus.ACKNOWLEDGED
    _step(
        case,
        StepKind.CONTACT,
        actor,
        now,
        note=_clean(note),
        reached=bool(reached),
        channel=channel,
    )
    db.session.flush()
    return case


def add_note(case: Case, *, actor: User, now: datetime, note: str) -> Case:
    note = _clean(note)
    if not note:
        raise InvalidInput("the note is empty", "empty_note")
    _step(case, StepKind.NOTE, actor, now, note=note)
    db.session.flush()
    return case


def reassign(
    case: Case,
    *,
    actor: User,
    now: datetime,
    to_user: User | None = None,
    department: str | None = None,
    note: str | None = None,
) -> Case:
    """Give the case to a person (who must work with cases) or to a department."""
    _working(case)
    department = _clean(department)
    if (to_user is None) == (department is None):
        raise InvalidInput("name either a person or a department", "invalid_assignee")
    if to_user is not None:
        if not to_user.active or to_user.role not in CX_ROLES:
            raise InvalidInput(f"{to_user.username} cannot work on cases", "invalid_assignee")
        if to_user.role == Role.BRANCH_MANAGER and not to_user.belongs_to(case.branch):
            raise InvalidInput(
                f"{to_user.username} does not manage branch {case.branch.code}", "invalid_assignee"
            )
        if case.owner_id == to_user.id and case.department is None:
            raise Conflict(f"{to_user.username} owns the case already", "same_owner")
        case.owner_id, case.department = to_user.id, None
        data = {"to_user": to_user.id, "username": to_user.username}
    else:
        if len(department) > 80:
            raise InvalidInput("the department's name is too long", "invalid_assignee")
        if case.department == department:
            raise Conflict(f"{department} has the case already", "same_owner")
        case.department = department
        data = {"department": department}
    _step(case, StepKind.REASSIGNED, actor, now, note=_clean(note), **data)
    db.session.flush()
    return case


def resolve(
    case: Case,
    *,
    actor: User,
    now: datetime,
    root_cause: str | None,
    reason_code: str | None,
    action_taken: str | None,
) -> Case:
    """Close the case with its 5P root cause, a reason code and the action taken (all three
    required), then send the customer the recovery survey."""
    _working(case)
    action_taken = _clean(action_taken)
    missing = [
        name
        for name, value in (
            ("root_cause", root_cause),
            ("reason_code", reason_code),
            ("action_taken", action_taken),
        )
        if not value
    ]
    if missing:
        raise InvalidInput(f"required to resolve: {', '.join(missing)}", "missing_fields")
    if root_cause not in {r.value for r in RootCause}:
        raise InvalidInput(
            f"root_cause must be one of {', '.join(r.value for r in RootCause)}",
            "invalid_root_cause",
        )
    if reason_code not in CASE_REASON_CODES:
        raise InvalidInput(
            f"reason_code must be one of {', '.join(CASE_REASON_CODES)}", "invalid_reason_code"
        )
    if not any(s.kind == StepKind.CONTACT for s in case.steps):
        raise Conflict("log a contact attempt with the customer first", "no_contact")
    case.status = CaseStatus.RESOLVED
    case.resolved_at = now
    case.due_at = None
    case.root_cause = RootCause(root_cause)
    case.reason_code = reason_code
    case.action_taken = action_taken
    _step(
        case,
        StepKind.RESOLVED,
        actor,
        now,
        root_cause=root_cause,
        reason_code=reason_code,
        action=action_taken,
    )
    db.session.flush()
    _send_recovery(case, now=now)
    return case


def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


# --- the recovery survey -----------------------------------------------------------------------


def resolution_round(case: Case) -> int:
    """How many times the case was resolved: the recovery link names the round it asks about."""
    return sum(1 for s in case.steps if s.kind == StepKind.RESOLVED)


def _reopen_round(case: Case) -> int:
    return sum(1 for s in case.steps if s.kind == StepKind.REOPENED)


def recovery_reachable(case: Case) -> bool:
    """Whether the customer left a phone number or an e-mail address the recovery survey can
    go to."""
    customer = db.session.get(Customer, case.customer_id) if case.customer_id else None
    return customer is not None and bool(channel_chain(phone=customer.phone, email=customer.email))


def _send_recovery(case: Case, *, now: datetime) -> bool:
    if not recovery_reachable(case):
        return False
    customer = db.session.get(Customer, case.customer_id)
    chain = channel_chain(phone=customer.phone, email=customer.email)
    response = db.session.get(FeedbackResponse, case.response_id)
    locale = content.pick_locale(
        response.locale if response else None, customer.locale, case.branch.locale
    )
    round_ = resolution_round(case)
    message = content.recovery(
        case, locale=locale, url=recovery_url(case, round_, locale), name=customer.name
    )
    (channel, recipient), *rest = chain
    written = enqueue(
        RECOVERY_KIND,
        channel=channel,
        recipient=recipient,
        subject=message.subject,
        body=message.body if channel == Channel.EMAIL else message.short,
        fallbacks=[{"channel": c, "recipient": r} for c, r in rest],
        locale=locale,
        dedupe_key=f"case:{case.id}:recovery:{round_}",
        now=now,
    )
    if written is not None:
        _step(case, StepKind.RECOVERY_SENT, None, now, round=round_, channel=Channel(channel).value)
        db.session.flush()
    return written is not None


def answer_recovery(case: Case, *, round_: int, nps, now: datetime) -> Case:
    """The customer's answer to the recovery survey; a still-unhappy one reopens the case."""
    if isinstance(nps, bool) or not isinstance(nps, int) or not 0 <= nps <= 10:
        raise InvalidInput("the answer must be a number from 0 to 10", "invalid_nps")
    if case.status != CaseStatus.RESOLVED or round_ != resolution_round(case):
        raise Conflict("this survey is closed", "survey_closed")
    if any(
        s.kind == StepKind.RECOVERY_ANSWERED and s.data.get("round") == round_ for s in case.steps
    ):
        raise Conflict("this survey was answered already", "already_answered")
    survey = survey_for(case.branch_id, case.service_id)
    limit = survey.escalate_nps_max if survey.escalate_nps_max is not None else DEFAULT_UNHAPPY_NPS
    happy = nps > limit
    case.recovery_nps = nps
    _step(case, StepKind.RECOVERY_ANSWERED, None, now, nps=nps, happy=happy, round=round_)
    if not happy:
        _reopen(case, survey, now=now)
    db.session.flush()
    return case


def _reopen(case: Case, survey: SurveyConfig, *, now: datetime) -> None:
    owner = level_one_owner(case.branch_id, survey)
    previous = {"level": case.level, "root_cause": case.root_cause and case.root_cause.value}
    case.status = CaseStatus.OPEN
    case.level = 1
    if owner is not None:
        case.owner_id, case.department = owner.id, None
    case.resolved_at = None
    case.root_cause = None
    case.reason_code = None
    case.action_taken = None
    case.first_contact_at = None  # the clock runs again; the earlier contacts stay in the steps
    case.due_at = ladder.next_due(case.branch, 1, now)
    _step(case, StepKind.REOPENED, None, now, previous=previous)
    db.session.flush()
    if case.owner_id is not None:
        _notify_owner(case, db.session.get(User, case.owner_id), now=now, escalated=False)


# --- the escalation sweep ----------------------------------------------------------------------


@dataclass
class Change:
    case_id: int
    branch: str
    from_level: int
    to_level: int
    owner: str | None  # the new owner's username
    owner_kept: bool  # the previous owner has no manager: they keep the case
    due_at: datetime | None
    notified: list[str]  # e-mail addresses written to the outbox (nothing on a dry run)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["due_at"] = self.due_at.isoformat() if self.due_at else None
        return data


def _due_query(now: datetime):
    return (
        select(Case)
        .where(
            Case.status.in_(WORKING),
            Case.due_at.is_not(None),
            Case.due_at <= now,
            Case.first_contact_at.is_(None),
        )
        .order_by(Case.due_at, Case.id)
    )


def _is_due(case: Case, now: datetime) -> bool:
    return (
        case.status in WORKING
        and case.first_contact_at is None
        and case.due_at is not None
        and case.due_at <= now
    )


def escalate_due(now: datetime, *, dry_run: bool = False, limit: int = 200) -> list[Change]:
    """Move every case whose due time passed without a contact one level up (see the module's
    docstring of `ladder.py` for the clock). Returns the changes made (or, with `dry_run`,
    those that would be made, changing nothing).

    Race-proof: the due rows are claimed `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's
    `BEGIN IMMEDIATE` serializes the whole unit of work) and re-checked once locked, so two
    sweeps at once never move a case twice; the e-mails carry a dedupe key per case, reopening
    round and level, so a retried sweep never sends one twice.
    """
    query = _due_query(now).limit(limit)
    if dry_run:
        cases = list(db.session.scalars(query))
    else:
        query = query.with_for_update(skip_locked=True).execution_options(populate_existing=True)
        cases = list(db.session.scalars(query))
    changes = []
    last = ladder.last_level()
    for case in cases:
        if not _is_due(case, now):  # changed between the snapshot and the lock
            continue
        if case.level >= last:  # the ladder got shorter: nothing above this level
            if not dry_run:
                case.due_at = None
            continue
        changes.append(_escalate(case, now=now, last=last, dry_run=dry_run))
    if not dry_run:
        db.session.flush()
    return changes


def _escalate(case: Case, *, now: datetime, last: int, dry_run: bool) -> Change:
    previous_owner = db.session.get(User, case.owner_id) if case.owner_id else None
    manager = (
        db.session.get(User, previous_owner.manager_id)
        if previous_owner is not None and previous_owner.manager_id
        else None
    )
    if manager is not None and not manager.active:
        manager = None
    new_owner = manager or previous_owner
    to_level = case.level + 1
    # the next due time counts from the previous one, not from the sweep's run
    due = ladder.next_due(case.branch, to_level, case.due_at)
    change = Change(
        case_id=case.id,
        branch=case.branch.code,
        from_level=case.level,
        to_level=to_level,
        owner=new_owner.username if new_owner is not None else None,
        owner_kept=manager is None,
        due_at=due,
        notified=[],
    )
    if dry_run:
        return change
    case.level = to_level
    case.due_at = due
    if new_owner is not None:
        case.owner_id = new_owner.id
    note = None if manager is not None else "no manager above the owner: the owner keeps the case"
    _step(
        case,
        StepKind.ESCALATED,
        None,
        now,
        note=note,
        **{"from": change.from_level, "to": to_level, "owner": case.owner_id},
    )
    # inside the unit of work: webhook deliveries (webhooks/receivers.py)
    in_transaction("case.escalated", case=case, change=change, session=db.session, now=now)
    if new_owner is not None and _notify_owner(case, new_owner, now=now, escalated=True):
        change.notified.append(new_owner.email)
    if to_level == last:
        for person in ladder.executives():
            if person.id == case.owner_id:
                continue  # told as the owner already
            if _notify_executive(case, person, now=now):
                change.notified.append(person.email)
    return change


# --- e-mails to staff --------------------------------------------------------------------------


def _staff_locale(user: User, case: Case) -> str:
    return content.pick_locale(user.locale, case.branch.locale)


def _key(case: Case, who: str) -> str:
    return f"case:{case.id}:r{_reopen_round(case)}:level:{case.level}:{who}"


def _notify_owner(case: Case, owner: User, *, now: datetime, escalated: bool) -> bool:
    if not owner.email:
        return False
    message = content.for_owner(case, locale=_staff_locale(owner, case), escalated=escalated)
    return (
        enqueue(
            ESCALATED_KIND if escalated else OPENED_KIND,
            channel=Channel.EMAIL,
            recipient=owner.email,
            subject=message.subject,
            body=message.body,
            locale=message.locale,
            dedupe_key=_key(case, f"owner:{owner.id}"),
            now=now,
        )
        is not None
    )


def _notify_executive(case: Case, person: User, *, now: datetime) -> bool:
    if not person.email:
        return False
    message = content.for_executive(case, locale=_staff_locale(person, case))
    return (
        enqueue(
            EXECUTIVE_KIND,
            channel=Channel.EMAIL,
            recipient=person.email,
            subject=message.subject,
            body=message.body,
            locale=message.locale,
            dedupe_key=_key(case, f"executive:{person.id}"),
            now=now,
        )
        is not None
    )
