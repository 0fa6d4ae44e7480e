"""Demo cases: a few realistic unhappy customers at different points of the escalation ladder,
for the demo branches (not wired into `demo/seed.py`: the integrator calls
`seed_demo_cases(app_or_session, now)` after the seed).

For each of (up to) three active branches, six finished visit steps with an unhappy rating
and an Indonesian comment are written, and their cases are taken to where a real week would
have left them: one just opened (level 1), one acknowledged and called back, one escalated to
level 2, one at level 3 (the executives informed), one resolved whose customer answered the
recovery survey happily (a converted detractor), one resolved and reopened by a still-unhappy
answer. Everything goes through `cases.services` with past clocks. The e-mails those steps
write to the outbox are removed again at the end: the demo informs nobody.

Idempotent enough: a branch that has demo cases already (a response with the demo's marker
comment prefix) is left alone.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from ..accounts.models import Role, User, user_branches
from ..branches.models import Branch
from ..customers.models import Customer
from ..extensions import db
from ..feedback.models import FeedbackChannel, FeedbackResponse
from ..notify.models import OutboxMessage
from ..tickets.models import Ticket, TicketStatus, Visit
from . import services
from .models import Case

# (hours ago, scores, reasons, comment, customer name, what happens next)
STORIES = [
    (
        6,
        {"nps": 3, "csat": 2},
        ["waiting_time"],
        "Antrean terlalu lama, hampir satu jam baru dipanggil.",
        "Ibu Rina Wulandari",
        "open",
    ),
    (
        30,
        {"nps": 5, "csat": 2},
        ["staff_attitude"],
        "Petugas teller kurang ramah dan terburu-buru.",
        "Bapak Agus Santoso",
        "called",
    ),
    (
        56,
        {"nps": 2},
        ["process"],
        "Harus bolak-balik karena dokumen kurang, tidak dijelaskan dari awal.",
        "Ibu Siti Rahmawati",
        "level2",
    ),
    (
        80,
        {"nps": 0, "csat": 1},
        ["product"],
        "Biaya administrasi dipotong tanpa penjelasan. Saya sangat kecewa.",
        "Bapak Hendra Gunawan",
        "level3",
    ),
    (
        120,
        {"nps": 4},
        ["facilities"],
        "AC di ruang tunggu mati, panas sekali.",
        "Ibu Dewi Lestari",
        "converted",
    ),
    (
        140,
        {"nps": 1},
        ["waiting_time"],
        "Sistem gangguan, disuruh datang lagi besok.",
        "Bapak Joko Prasetyo",
        "reopened",
    ),
]


def seed_demo_cases(app_or_session, now: datetime) -> list[int]:
    """Open the demo cases; returns their ids. Pass the app (it works in its own application
    context and commits) or a session / None (works in the current unit of work, flushes)."""
    if hasattr(app_or_session, "app_context"):
        with app_or_session.app_context():
            ids = _seed(now)
            db.session.commit()
            return ids
    return _seed(now)


def _manager(branch: Branch) -> User | None:
    return services.branch_manager(branch.id)


def _anyone(branch: Branch) -> User | None:
    """Who works the demo's cases: the branch manager, else any CX person of the branch."""
    return _manager(branch) or db.session.scalar(
        select(User)
        .join(user_branches, user_branches.c.user_id == User.id)
        .where(user_branches.c.branch_id == branch.id, User.role == Role.CX_AGENT)
        .order_by(User.id)
        .limit(1)
    )


def _step_row(branch: Branch, when: datetime, n: int, customer: Customer, scores, reasons, text):
    service = branch.services[n % len(branch.services)]
    counter = next((c for c in branch.counters), None)
    arrived = when - timedelta(minutes=55)
    visit = Visit(
        branch_id=branch.id,
        customer_id=customer.id,
        token=secrets.token_urlsafe(16),
        arrived_at=arrived,
        closed_at=when,
    )
    ticket = Ticket(
        visit=visit,
        branch_id=branch.id,
        service_id=service.id,
        business_day=branch.business_day(arrived),
        number=f"{service.prefix}{900 + n:03d}",
        status=TicketStatus.FINISHED,
        issued_at=arrived,
        queue_since=arrived,
        called_at=arrived + timedelta(minutes=45),
        started_at=arrived + timedelta(minutes=45),
        finished_at=when,
        counter_id=counter.id if counter else None,
        quoted_wait_s=900,
    )
    db.session.add_all([visit, ticket])
    db.session.flush()
    response = FeedbackResponse(
        ticket_id=ticket.id,
        visit_id=visit.id,
        branch_id=branch.id,
        service_id=service.id,
        counter_id=ticket.counter_id,
        customer_id=customer.id,
        channel=FeedbackChannel.TABLET,
        reasons=list(reasons),
        comment=text,
        locale="id",
        submitted_at=when,
        business_day=branch.business_day(when),
        wait_s=45 * 60,
        quoted_wait_s=900,
        service_s=600,
        transfers=0,
        **scores,
    )
    db.session.add(response)
    db.session.flush()
    return response


def _seed(now: datetime) -> list[int]:
    branches = list(
        db.session.scalars(
            select(Branch).where(Branch.active.is_(True)).order_by(Branch.code).limit(3)
        )
    )
    ids: list[int] = []
    first_outbox = db.session.scalar(
        select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)
    )
    for b_index, branch in enumerate(branches):
        if db.session.scalar(
            select(Case.id)
            .join(FeedbackResponse, FeedbackResponse.id == Case.response_id)
            .join(Customer, Customer.id == FeedbackResponse.customer_id)
            .where(Case.branch_id == branch.id, Customer.external_id.like("demo-case-%"))
            .limit(1)
        ):
            continue
        actor = _anyone(branch)
        for n, (hours, scores, reasons, text, name, story) in enumerate(STORIES):
            opened = now - timedelta(hours=hours + b_index)
            key = f"demo-case-{branch.code}-{n}"
            customer = Customer(
                name=name,
                external_id=key,
                email=f"{key.lower()}@contoh.co.id",
                locale="id",
                consent_contact=True,
                consent_survey=True,
                created_at=opened,
            )
            db.session.add(customer)
            db.session.flush()
            response = _step_row(branch, opened, b_index * 10 + n, customer, scores, reasons, text)
            case = services.open_case_for(response, now=opened)
            if case is None:
                continue
            ids.append(case.id)
            _play(case, story, actor, opened, now)
    # the stories escalate by the sweep, as the job would have done along the way
    for _ in range(3):
        services.escalate_due(now)
    if first_outbox is not None:
        db.session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.id > first_outbox, OutboxMessage.dedupe_key.like("case:%"))
            .execution_options(synchronize_session=False)
        )
    else:
        db.session.execute(
            delete(OutboxMessage)
            .where(OutboxMessage.dedupe_key.like("case:%"))
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    return ids


def _play(case: Case, story: str, actor: User | None, opened: datetime, now: datetime) -> None:
    if actor is None or story in {"open", "level2", "level3"}:
        return
    services.acknowledge(case, actor=actor, now=opened + timedelta(hours=2))
    services.log_contact(
        case,
        actor=actor,
        now=opened + timedelta(hours=3),
        reached=True,
        channel="phone",
        note="Nasabah sudah ditelepon, menyampaikan permohonan maaf.",
    )
    if story == "called":
        return
    services.resolve(
        case,
        actor=actor,
        now=opened + timedelta(hours=20),
        root_cause="place" if story == "converted" else "process",
        reason_code="facilities" if story == "converted" else "waiting_time",
        action_taken=(
            "AC diperbaiki oleh vendor, nasabah diberi informasi."
            if story == "converted"
            else "Gangguan sistem dilaporkan ke TI, nasabah dijadwalkan ulang."
        ),
    )
    services.answer_recovery(
        case,
        round_=1,
        nps=10 if story == "converted" else 4,
        # the unhappy answer came in this morning: the case runs on level 1 again
        now=opened + timedelta(hours=30) if story == "converted" else now - timedelta(hours=10),
    )
