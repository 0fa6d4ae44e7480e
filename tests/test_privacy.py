"""Personal data (customers/privacy.py, retention.py, erasure.py): who sees a customer's
name, phone and e-mail; the retention job that anonymises old visits while the statistics stay
the same; erasing one customer on request; consent recorded with its moment and source."""

from __future__ import annotations

import re
from datetime import timedelta

import flask_migrate
import pytest
from sqlalchemy import func, inspect, select

from queue_app import create_app
from queue_app.accounts.models import Role
from queue_app.audit.models import AuditEntry
from queue_app.booking.models import Appointment, AppointmentStatus
from queue_app.cases.models import Case, CaseStep, StepKind
from queue_app.core.types import utcnow
from queue_app.customers import privacy, retention
from queue_app.customers.models import ContactVerification, Customer
from queue_app.extensions import db
from queue_app.feedback import metric_queries
from queue_app.feedback import services as feedback
from queue_app.feedback.models import FeedbackChannel, FeedbackResponse
from queue_app.jobs import tasks
from queue_app.jobs.scheduler import JOBS
from queue_app.notify.models import Channel, OutboxMessage, OutboxStatus
from queue_app.reports import queries as reports
from queue_app.tickets import services as engine
from queue_app.tickets.models import JourneyEvent, Ticket, Visit

from .apihelp import fast_passwords
from .test_devices import PASSWORD, signed_in, text_of  # noqa: F401

PHONE = "+6281234567890"


# --- masks and the policy ----------------------------------------------------------------------


def test_masks_keep_enough_to_confirm_and_not_enough_to_use():
    assert privacy.mask_phone(PHONE) == "+62 812 •••• 7890"
    assert privacy.mask_phone(None) is None
    assert "1234" not in privacy.mask_phone("+12345")
    assert privacy.mask_name("Budi Santoso") == "Bu•• S••••••"
    assert privacy.mask_name("  ") is None
    assert privacy.mask_email("budi.santoso@example.com") == "bu••••••••••@example.com"
    assert "santoso" not in privacy.mask_email("budi.santoso@example.com")


class _Person:
    def __init__(self, role, active=True):
        self.role, self.active, self.is_authenticated = role, active, True


@pytest.mark.parametrize(
    ("role", "context", "field", "allowed"),
    [
        (Role.STAFF, "counter", "name", True),
        (Role.STAFF, "counter", "phone", False),
        (Role.BRANCH_MANAGER, "counter", "name", True),
        (Role.EXECUTIVE, "counter", "name", False),
        (Role.CX_AGENT, "counter", "name", False),
        (Role.CX_AGENT, "case", "phone", True),
        (Role.CX_AGENT, "case", "email", True),
        (Role.BRANCH_MANAGER, "case", "phone", True),
        (Role.ADMIN, "case", "phone", True),
        (Role.EXECUTIVE, "case", "phone", False),
        (Role.EXECUTIVE, "case", "name", False),
        (Role.STAFF, "case", "phone", False),
        (Role.ADMIN, "report", "name", False),
    ],
)
def test_who_sees_what(role, context, field, allowed):
    assert privacy.can_see_pii(_Person(role), context, field) is allowed
    value = {"name": "Ayu Lestari", "phone": PHONE, "email": "ayu@example.com"}[field]
    shown = privacy.shown(_Person(role), context, field, value)
    if context == "report":
        assert shown is None
    else:
        assert (shown == value) is allowed


def test_nobody_signed_out_or_deactivated_sees_anything():
    assert not privacy.can_see_pii(None, "case", "phone")
    assert not privacy.can_see_pii(_Person(Role.ADMIN, active=False), "case", "phone")
    with pytest.raises(ValueError):
        privacy.can_see_pii(_Person(Role.ADMIN), "gossip")


# --- the case page: CX agents call back, executives see masks -----------------------------------


@pytest.fixture
def case_with_contact(make, now, monkeypatch):
    fast_passwords(monkeypatch)
    from .caseshelp import build_ladder

    ladder = build_ladder(make)
    person = Customer(phone=PHONE, email="ayu.lestari@example.com", name="Ayu Lestari")
    db.session.add(person)
    db.session.flush()
    ticket = make.ticket(ladder.branch, "teller", now=now, customer=person)
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=ticket.visit_id,
        branch_id=ladder.branch.id,
        service_id=ticket.service_id,
        customer_id=person.id,
        channel=FeedbackChannel.QR,
        nps=2,
        business_day=ticket.business_day,
        submitted_at=now,
    )
    db.session.add(response)
    db.session.flush()
    case = Case(
        response_id=response.id,
        ticket_id=ticket.id,
        branch_id=ladder.branch.id,
        service_id=ticket.service_id,
        customer_id=person.id,
        opened_at=now,
    )
    db.session.add(case)
    db.session.commit()
    return ladder, case


def test_the_case_page_shows_the_contact_to_cx_and_masks_it_for_executives(
    app_ctx, case_with_contact
):
    ladder, case = case_with_contact
    cx = signed_in(app_ctx, ladder.area.username)  # a CX agent of the branch
    page = cx.get(f"/cx/cases/{case.id}").get_data(as_text=True)
    assert f'href="tel:{PHONE}"' in page and "ayu.lestari@example.com" in page
    assert "Ayu Lestari" in page
    boss = signed_in(app_ctx, ladder.ceo.username)  # an executive
    response = boss.get(f"/cx/cases/{case.id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert PHONE not in page and "tel:" not in page
    assert "ayu.lestari@example.com" not in page and "Ayu Lestari" not in page
    assert "+62 812 •••• 7890" in page and "Ay• L••••••" in page


# --- retention -----------------------------------------------------------------------------------


def _served(make, branch, staff, counter, *, when, customer, note, comment, nps):
    """A visit of `customer` served at `counter` at `when`, rated with `comment`."""
    make.ticket(branch, "teller", now=when, customer=customer)
    engine.open_counter(counter, staff, now=when)
    called = engine.call_next(counter, staff, now=when + timedelta(minutes=4))
    engine.start(called, staff, now=when + timedelta(minutes=5))
    engine.hold(called, staff, now=when + timedelta(minutes=6), note=f"hold {note}")
    engine.resume(called, staff, now=when + timedelta(minutes=7))
    called = engine.call_next(counter, staff, now=when + timedelta(minutes=8))
    engine.start(called, staff, now=when + timedelta(minutes=9))
    engine.finish(called, staff, now=when + timedelta(minutes=12), note=note)
    db.session.commit()
    response = feedback.record_response(
        called,
        channel=FeedbackChannel.QR,
        nps=nps,
        csat=4,
        comment=comment,
        now=when + timedelta(minutes=20),
    )
    case = db.session.scalar(select(Case).where(Case.response_id == response.id))
    if case is None:
        case = Case(
            response_id=response.id,
            ticket_id=called.id,
            branch_id=branch.id,
            service_id=called.service_id,
            customer_id=customer.id,
            opened_at=when + timedelta(minutes=20),
        )
        db.session.add(case)
        db.session.flush()
    db.session.add(
        CaseStep(
            case_id=case.id,
            kind=StepKind.CONTACT,
            actor_id=staff.id,
            at=when + timedelta(hours=1),
            level=1,
            note=f"called {customer.name} on {customer.phone}",
            data={"reached": True, "channel": "phone"},
        )
    )
    case.action_taken = f"apologised to {customer.name}"
    db.session.commit()
    return called


@pytest.fixture
def history(make, monkeypatch):
    """An old visit (800 days ago) and a recent one (10 days ago), each of its own customer,
    with everything that hangs off a visit: notes, a rating with a comment, a case with a
    contact note, an appointment, sent and pending messages, a one-time code row."""
    fast_passwords(monkeypatch)
    now = utcnow()
    branch = make.branch("JKT01", counters=[("Teller 1", ["teller"])])
    staff = make.user("budi", branches=[branch])
    counter = branch.counters[0]
    old_when = now - timedelta(days=800)
    new_when = now - timedelta(days=10)
    # a weekday morning in Jakarta, inside the opening hours
    old_when = old_when.replace(hour=3, minute=0, second=0, microsecond=0)
    while old_when.weekday() >= 5:
        old_when -= timedelta(days=1)
    new_when = new_when.replace(hour=3, minute=0, second=0, microsecond=0)
    while new_when.weekday() >= 5:
        new_when -= timedelta(days=1)
    old_person = Customer(
        phone=PHONE,
        name="Ayu Lestari",
        external_id="CIF-1",
        consent_contact=True,
        created_at=old_when,
    )
    new_person = Customer(phone="+6281298765432", name="Rina Wati", created_at=new_when)
    db.session.add_all([old_person, new_person])
    db.session.flush()
    old_ticket = _served(
        make,
        branch,
        staff,
        counter,
        when=old_when,
        customer=old_person,
        note="Ayu's KTP",
        comment="Ayu: slow",
        nps=3,
    )
    engine.close_counter(counter, staff, now=old_when + timedelta(hours=2))
    new_ticket = _served(
        make,
        branch,
        staff,
        counter,
        when=new_when,
        customer=new_person,
        note="Rina's KTP",
        comment="Rina: fine",
        nps=9,
    )
    service = branch.services[0]
    db.session.add_all(
        [
            Appointment(
                code="OLD001",
                branch_id=branch.id,
                service_id=service.id,
                start=old_when,
                end=old_when + timedelta(minutes=15),
                status=AppointmentStatus.NO_SHOW,
                customer_id=old_person.id,
                name="Ayu Lestari",
                email="ayu@example.com",
                created_at=old_when,
            ),
            OutboxMessage(
                kind="test",
                channel=Channel.SMS,
                recipient=PHONE,
                body="Ayu, your turn",
                status=OutboxStatus.SENT,
                created_at=old_when,
                sent_at=old_when,
                fallbacks=[{"channel": "email", "recipient": "ayu@example.com"}],
            ),
            OutboxMessage(
                kind="test",
                channel=Channel.SMS,
                recipient="+6281298765432",
                body="Rina, your turn",
                status=OutboxStatus.SENT,
                created_at=new_when,
            ),
            ContactVerification(
                contact=PHONE, channel="sms", created_at=old_when, window_started_at=old_when
            ),
        ]
    )
    db.session.commit()
    return branch, old_ticket, new_ticket, old_person, new_person


def _figures(branch, tickets):
    """Every figure of the reports and the feedback metrics of the visits' days."""
    from queue_app.branches.models import Branch

    branch_id = branch if isinstance(branch, int) else branch.id
    branch = db.session.get(Branch, branch_id)
    out = []
    for day in [t if not isinstance(t, Ticket) else t.business_day for t in tickets]:
        report = reports.compute([branch], "day", day)
        out.append(repr((report.total, report.series, report.groups, report.heat)))
        metrics = metric_queries.report([branch_id], day, day)
        out.append(repr(metrics))
    out.append(db.session.scalar(select(func.count()).select_from(Ticket)))
    out.append(db.session.scalar(select(func.count()).select_from(JourneyEvent)))
    out.append(db.session.scalar(select(func.count()).select_from(FeedbackResponse)))
    out.append(db.session.scalar(select(func.count()).select_from(Case)))
    return out


def test_retention_blanks_old_personal_data_and_keeps_the_figures(history):
    branch, old_ticket, new_ticket, old_person, new_person = history
    before = _figures(branch, [old_ticket, new_ticket])
    counts = retention.run(now=utcnow(), days=730, batch_size=1)
    db.session.expire_all()
    assert _figures(branch, [old_ticket, new_ticket]) == before
    # the appointment never checked in has no visit: it goes on its own
    assert counts.visits == 1 and counts.appointments == 1
    assert counts.outbox_messages == 1 and counts.verifications == 1 and counts.customers == 1

    old = db.session.get(Ticket, old_ticket.id)
    assert old.notes is None and old.handover_note is None
    assert old.visit.customer_id is None and old.visit.anonymised_at is not None
    assert old.finished_at is not None and old.status.value == "finished"  # statistics stay
    response = db.session.scalar(
        select(FeedbackResponse).where(FeedbackResponse.ticket_id == old.id)
    )
    assert response.comment is None and response.customer_id is None
    assert response.nps == 3 and response.csat == 4
    case = db.session.scalar(select(Case).where(Case.ticket_id == old.id))
    assert case.customer_id is None and case.action_taken is None
    assert all(step.note is None for step in case.steps)
    appointment = db.session.scalar(select(Appointment).where(Appointment.code == "OLD001"))
    assert appointment.name is None and appointment.email is None
    assert appointment.customer_id is None
    sent = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert sent[0].recipient == "" and sent[0].body == "" and sent[0].fallbacks == []
    assert sent[1].recipient == "+6281298765432"  # recent: kept
    assert db.session.scalar(select(func.count()).select_from(ContactVerification)) == 0
    person = db.session.get(Customer, old_person.id)
    assert person.erased_at is not None
    assert (person.name, person.phone, person.email, person.external_id) == (None,) * 4
    assert person.consent_contact is False

    # the recent visit is untouched
    recent = db.session.get(Ticket, new_ticket.id)
    assert recent.notes == "Rina's KTP" and recent.visit.customer_id == new_person.id
    kept = db.session.scalar(
        select(FeedbackResponse).where(FeedbackResponse.ticket_id == recent.id)
    )
    assert kept.comment == "Rina: fine"
    assert db.session.get(Customer, new_person.id).name == "Rina Wati"

    # idempotent: a second run finds nothing
    again = retention.run(now=utcnow(), days=730)
    assert sum(again.as_dict().values()) == 0


def test_the_retention_job_reads_its_period_from_the_configuration(app_ctx, history):
    assert "anonymise_personal_data" in {job_id for job_id, _f, _t in JOBS}
    app_ctx.config["RETENTION_DAYS"] = 5  # both visits are older than that
    try:
        changed = tasks.anonymise_personal_data(app_ctx, utcnow())
    finally:
        app_ctx.config["RETENTION_DAYS"] = 730
    db.session.remove()
    assert changed >= 2
    assert db.session.scalar(select(func.count()).where(Visit.anonymised_at.is_(None))) == 0
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "privacy.anonymise"))
    assert entry.via == "job" and entry.details["older_than_days"] == 5
    db.session.remove()  # SQLite: the job's transaction takes the write lock
    assert tasks.anonymise_personal_data(app_ctx, utcnow()) == 0


def test_the_anonymise_command_dry_run_changes_nothing(app_ctx, history):
    runner = app_ctx.test_cli_runner()
    result = runner.invoke(args=["privacy", "anonymise", "--older-than-days", "730", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "visits: 1" in result.output
    db.session.remove()
    assert db.session.scalar(select(func.count()).where(Visit.anonymised_at.is_not(None))) == 0
    result = runner.invoke(args=["privacy", "anonymise", "--older-than-days", "730"])
    assert result.exit_code == 0 and "visits: 1" in result.output, result.output
    db.session.remove()
    assert db.session.scalar(select(func.count()).where(Visit.anonymised_at.is_not(None))) == 1
    result = runner.invoke(args=["privacy", "anonymise", "--older-than-days", "0"])
    assert result.exit_code != 0  # at least one day is kept


# --- erasing one customer on request --------------------------------------------------------------


def test_erase_refuses_ambiguous_or_unknown_input(app_ctx, history):
    runner = app_ctx.test_cli_runner()
    both = runner.invoke(args=["customers", "erase", "--phone", PHONE, "--email", "a@b.co"])
    assert both.exit_code != 0 and "exactly one" in both.output
    none = runner.invoke(args=["customers", "erase"])
    assert none.exit_code != 0 and "exactly one" in none.output
    unknown = runner.invoke(args=["customers", "erase", "--email", "nobody@example.com"])
    assert unknown.exit_code != 0 and "no customer" in unknown.output
    # the address of a booking finds its customer, known by phone number
    found = runner.invoke(args=["customers", "erase", "--email", "AYU@example.com", "--dry-run"])
    assert found.exit_code == 0 and "would be erased" in found.output, found.output
    bad = runner.invoke(args=["customers", "erase", "--phone", "12"])
    assert bad.exit_code != 0 and "phone number" in bad.output
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_erase_blanks_one_customer_and_keeps_the_statistics(app_ctx, history):
    branch, old_ticket, new_ticket, old_person, _new_person = history
    person_id, old_id, new_id = old_person.id, old_ticket.id, new_ticket.id
    key = (branch.id, [old_ticket.business_day, new_ticket.business_day])
    pending = OutboxMessage(
        kind="test",
        channel=Channel.EMAIL,
        recipient="ayu@example.com",
        body="reminder",
        status=OutboxStatus.PENDING,
        created_at=utcnow(),
    )
    db.session.add(pending)
    db.session.commit()
    pending_id = pending.id
    before = _figures(*key)
    runner = app_ctx.test_cli_runner()

    dry = runner.invoke(args=["customers", "erase", "--phone", "0812-3456-7890", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "outbox withdrawn: 1" in dry.output
    db.session.remove()
    assert db.session.get(Customer, person_id).name == "Ayu Lestari"

    result = runner.invoke(args=["customers", "erase", "--phone", "0812-3456-7890"])
    assert result.exit_code == 0, result.output
    assert f"customer {person_id}: personal data erased" in result.output
    assert "outbox withdrawn: 1" in result.output and "outbox blanked: 1" in result.output
    assert "feedback comments: 1" in result.output
    db.session.remove()
    person = db.session.get(Customer, person_id)
    assert (person.name, person.phone, person.email, person.external_id) == (None,) * 4
    assert person.erased_at is not None and not person.consent_contact
    assert db.session.get(OutboxMessage, pending_id) is None  # withdrawn
    assert db.session.get(Ticket, old_id).notes is None
    assert db.session.get(Ticket, new_id).notes == "Rina's KTP"  # another customer
    assert db.session.scalar(select(func.count()).select_from(ContactVerification)) == 0
    assert _figures(*key) == before
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.erase"))
    assert entry.via == "cli" and entry.target_id == str(person_id)
    assert entry.actor_username.startswith("cli")
    assert "Ayu" not in repr(entry.details) and PHONE not in repr(entry.details)


# --- consent -------------------------------------------------------------------------------------


def test_consent_is_recorded_with_its_moment_and_source(app_ctx):
    person = Customer(phone=PHONE)
    db.session.add(person)
    first = utcnow()
    privacy.give_consent(person, now=first, source="booking")
    assert person.consent_contact and person.consent_contact_at == first
    assert person.consent_contact_source == "booking"
    privacy.give_consent(person, now=first + timedelta(days=1), source="staff")
    assert person.consent_contact_at == first  # the first moment it was given stays
    privacy.withdraw_consent(person)
    assert not person.consent_contact and person.consent_contact_at is None
    with pytest.raises(ValueError):
        privacy.give_consent(person, now=first, source="guess")


def test_consent_can_be_withdrawn_from_the_command_line(app_ctx):
    person = Customer(phone=PHONE, consent_contact=True, consent_survey=True)
    db.session.add(person)
    privacy.give_consent(person, now=utcnow(), source="staff", survey=True)
    db.session.commit()
    person_id = person.id
    runner = app_ctx.test_cli_runner()
    result = runner.invoke(
        args=["customers", "withdraw-consent", "--phone", "0812 3456 7890", "--only", "survey"]
    )
    assert result.exit_code == 0 and "consent withdrawn (survey)" in result.output, result.output
    db.session.remove()
    person = db.session.get(Customer, person_id)
    assert person.consent_contact and not person.consent_survey
    assert person.consent_survey_at is None
    result = runner.invoke(args=["customers", "withdraw-consent", "--id", str(person_id)])
    assert result.exit_code == 0, result.output
    db.session.remove()
    assert not db.session.get(Customer, person_id).consent_contact
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert actions == ["customer.withdraw_consent"] * 2
    result = runner.invoke(args=["customers", "withdraw-consent"])
    assert result.exit_code != 0 and "exactly one" in result.output


def test_the_booking_form_records_the_consent_it_asks_for(app_ctx, make, now):
    from queue_app.booking import services as booking

    branch = make.branch("JKT09", counters=[("Loket 1", ["teller"]), ("Loket 2", ["teller"])])
    service = next(s for s in branch.services if s.code == "teller")
    day = (now + timedelta(days=1)).date()  # Wednesday
    slots = [s for s in booking.day_slots(branch, service, day, now=now) if s.available]
    held = booking.hold(branch, service, slots[0].start, now=now)
    booking.confirm_booking(held, now=now, name="Ayu", phone="0812-3456-7890", consent=True)
    db.session.commit()
    person = db.session.scalar(select(Customer).where(Customer.phone == PHONE))
    assert person.consent_contact and person.consent_contact_source == "booking"
    assert person.consent_contact_at == now


# --- the migration -----------------------------------------------------------------------------


def test_migration_0012_downgrades_and_upgrades_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'mig.sqlite3'}"
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="0011")
        names = inspect(db.engine).get_table_names()
        assert "audit_entries" not in names
        columns = {c["name"] for c in inspect(db.engine).get_columns("customers")}
        assert not columns & {"consent_contact_at", "erased_at"}
        flask_migrate.upgrade()
        assert "audit_entries" in inspect(db.engine).get_table_names()
        assert "anonymised_at" in {c["name"] for c in inspect(db.engine).get_columns("visits")}
        db.engine.dispose()
    assert re.match(r"sqlite", url)
