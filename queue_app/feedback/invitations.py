"""Rating invitations by e-mail/SMS, and the contact policy that decides them.

When a visit step finishes served, the journey journal sends `journal.recorded` inside the
unit of work (`tickets/journal.py`); `on_journal_recorded` reads its `finish` entries and, in
the same transaction, ALWAYS writes one `FeedbackInvitation` row per finished step (unique
`ticket_id`): either `sent`, with its outbox message, or `skipped` with the reason. The checks,
in order:

1. `not_served`: the step was finished by the end-of-day job (`day_closed`): its real finish
   is unknown, and the message would go out at night;
2. `survey_off`: the touchpoint's survey (`questions.survey_for`) asks nothing;
3. `already_rated`: rated in this same unit of work (the tablet cannot be faster, but a
   replay can);
4. `no_contact`: the visit has no customer, or the customer no phone and no e-mail;
5. `no_consent`: the customer did not agree to surveys (`Customer.consent_survey`);
6. `open_case`: the customer has a case not resolved yet (`cases.models.Case`): nobody asks an
   unhappy customer for a rating while their complaint is being worked;
7. `recently_invited`: an invitation was SENT to the same customer within the survey's
   `quiet_days`;
8. `sampled_out`: deterministic sampling: the first 8 bytes of SHA-256 of the ticket id, mod
   100, must be below the survey's `sample_percent` (the same step is always in or out, on
   every process, and 0 % / 100 % mean none / all).

Whether the step was decided already, whether it is rated (3.) and its survey rows (2.) are
read in one statement (`_decision_facts`), so a walk-in's finish pays that read and the
INSERT; only a known customer reaches the reads of 6. and 7.

A sent invitation is an outbox message (`notify.services.enqueue`, kind `feedback_invitation`,
dedupe key `feedback:invite:<ticket id>`, channels by `channel_chain`: WhatsApp/SMS then
e-mail) in the customer's language (`content.py`), held back `FEEDBACK_INVITE_DELAY_S`
(600 s by default, `not_before`) so that an answer at the tablet comes first; its signed link
(`links.py`) is valid the survey's `link_valid_days` (`expires_at` on the row).

If the step is rated (tablet, QR) before the message goes out, the message still goes: the
outbox stays generic and never asks whether a message is still wanted. The link's page then
says "already rated" and records nothing (one response per step, whatever the channel).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..cases.models import Case, CaseStatus
from ..core.events import in_transaction_signal
from ..customers.models import Customer
from ..notify.services import channel_chain, enqueue
from ..tickets.models import Ticket, TicketStatus
from . import content, links
from .models import (
    FeedbackInvitation,
    FeedbackResponse,
    InvitationStatus,
    SkipReason,
    SurveyConfig,
)
from .questions import pick_survey, touchpoint_rows
from .services import asks_anything

KIND = "feedback_invitation"
DEFAULT_DELAY_S = 600


def init_invitations(app) -> None:
    """Connect the receiver (blinker keeps one connection however many apps)."""
    in_transaction_signal("journal.recorded").connect(on_journal_recorded)


def on_journal_recorded(_sender, *, session: Session, entries, **_payload) -> None:
    for entry in entries:
        if entry.kind != "finish" or entry.ticket_id is None:
            continue
        ticket = session.get(Ticket, entry.ticket_id)  # in the session: it was just changed
        if ticket is None or ticket.status != TicketStatus.FINISHED:
            continue
        invite(session, ticket, now=entry.at, closed_by_job=_closed_by_job(entry))


def _closed_by_job(entry) -> bool:
    return isinstance(entry.data, dict) and entry.data.get("reason") == "day_closed"


def in_sample(ticket_id: int, percent: int) -> bool:
    """Deterministic sampling of a step: the same answer on every process, every time."""
    digest = hashlib.sha256(str(ticket_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def invite(
    session: Session, ticket: Ticket, *, now: datetime, closed_by_job: bool = False
) -> FeedbackInvitation:
    """Decide and record the invitation of a finished step (see the module's docstring)."""
    known_id, rated, survey = _decision_facts(session, ticket)
    if known_id is not None:  # decided once per step
        return session.get(FeedbackInvitation, known_id)
    customer: Customer | None = ticket.visit.customer
    reason = _skip_reason(
        session, ticket, customer, survey, rated=rated, now=now, closed=closed_by_job
    )
    invitation = FeedbackInvitation(
        ticket_id=ticket.id,
        customer_id=customer.id if customer is not None else None,
        status=InvitationStatus.SKIPPED if reason else InvitationStatus.SENT,
        reason=reason,
        created_at=now,
    )
    if reason is None:
        invitation.expires_at = now + timedelta(days=survey.link_valid_days)
        _send(ticket, customer, survey, now=now)
    session.add(invitation)
    session.flush()
    return invitation


def _decision_facts(session: Session, ticket: Ticket) -> tuple[int | None, bool, SurveyConfig]:
    """The step's invitation id (if decided already), whether it is rated, and its touchpoint's
    survey, in one statement (a finish pays it in its transaction).

    The step's own row anchors the read, so that it answers even when the touchpoint has no
    `SurveyConfig` row (the defaults): one row per candidate survey row, or one row of NULLs;
    the two facts are scalar subqueries on the unique `ticket_id`. The same rows and choice as
    `questions.survey_for`, and the same question as `services.existing_response`.
    """
    known = (
        select(FeedbackInvitation.id)
        .where(FeedbackInvitation.ticket_id == Ticket.id)
        .scalar_subquery()
        .label("invitation_id")
    )
    rated = (
        select(FeedbackResponse.id)
        .where(FeedbackResponse.ticket_id == Ticket.id)
        .exists()
        .label("rated")
    )
    rows = session.execute(
        select(known, rated, SurveyConfig)
        .select_from(Ticket)
        .outerjoin(SurveyConfig, touchpoint_rows(ticket.branch_id, ticket.service_id))
        .where(Ticket.id == ticket.id)
    ).all()
    known_id, is_rated = (rows[0][0], bool(rows[0][1])) if rows else (None, False)
    configs = [config for _known, _rated, config in rows if config is not None]
    return known_id, is_rated, pick_survey(configs, ticket.branch_id, ticket.service_id)


def _skip_reason(session, ticket, customer, survey, *, rated, now, closed) -> SkipReason | None:
    if closed:
        return SkipReason.NOT_SERVED
    if not asks_anything(survey):
        return SkipReason.SURVEY_OFF
    if rated:
        return SkipReason.ALREADY_RATED
    if customer is None or not (customer.phone or customer.email):
        return SkipReason.NO_CONTACT
    if not customer.consent_survey:
        return SkipReason.NO_CONSENT
    open_case = session.scalar(
        select(Case.id)
        .where(Case.customer_id == customer.id, Case.status != CaseStatus.RESOLVED)
        .limit(1)
    )
    if open_case is not None:
        return SkipReason.OPEN_CASE
    if survey.quiet_days > 0:
        recent = session.scalar(
            select(FeedbackInvitation.id)
            .where(
                FeedbackInvitation.customer_id == customer.id,
                FeedbackInvitation.status == InvitationStatus.SENT,
                FeedbackInvitation.created_at > now - timedelta(days=survey.quiet_days),
            )
            .limit(1)
        )
        if recent is not None:
            return SkipReason.RECENTLY_INVITED
    if not in_sample(ticket.id, survey.sample_percent):
        return SkipReason.SAMPLED_OUT
    return None


def _send(ticket: Ticket, customer: Customer, survey, *, now: datetime) -> None:
    branch = ticket.branch
    locale = content.pick_locale(customer.locale, branch.locale)
    message = content.invitation(
        locale=locale,
        branch=branch.name,
        service=ticket.service.display_name(locale),
        number=ticket.number,
        url=links.rating_url(ticket, now=now),
        valid_days=survey.link_valid_days,
    )
    (channel, recipient), *fallbacks = channel_chain(phone=customer.phone, email=customer.email)
    delay = float(current_app.config.get("FEEDBACK_INVITE_DELAY_S", DEFAULT_DELAY_S))
    enqueue(
        KIND,
        channel=channel,
        recipient=recipient,
        subject=message.subject,
        body=message.text if channel == "email" else message.short,
        fallbacks=[{"channel": c, "recipient": r} for c, r in fallbacks],
        locale=message.locale,
        dedupe_key=f"feedback:invite:{ticket.id}",
        now=now,
        not_before=now + timedelta(seconds=delay),
    )
