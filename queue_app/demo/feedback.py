"""Ratings for the demo's visit history, so the CX metrics page has something to show.

A share of the finished history tickets (`seed._history`) gets a `FeedbackResponse`, written
directly in bulk (not through the feedback service: the seed opens no cases and sends no
message). The answers are plausible rather than random: most customers are content, a long
wait (against the service's target, and against the wait quoted at arrival) pulls the scores
down, and each member of staff has a small effect of their own. Deterministic: the same
history gives the same answers.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import insert, select

from ..accounts.models import Role, User, user_branches, user_services
from ..branches.models import Branch
from ..extensions import db
from ..feedback.models import FeedbackChannel, FeedbackResponse
from ..tickets.models import Ticket, TicketStatus, Visit

# share of finished visit steps that are rated
RESPONSE_RATE = 0.35
# channels of the ratings, with their weights, and how long after the visit each arrives
CHANNELS = [
    (FeedbackChannel.TABLET, 0.55, (20, 120)),
    (FeedbackChannel.QR, 0.2, (120, 1800)),
    (FeedbackChannel.LINK, 0.25, (1800, 6 * 3600)),
]
# share of ratings that answer the effort question as well
CES_RATE = 0.5
# share of ratings with a comment, among the unhappy ones and the others
COMMENT_RATE_UNHAPPY = 0.6
COMMENT_RATE = 0.15

COMMENTS_LONG_WAIT = [
    "Antrean terlalu lama",
    "Menunggu hampir satu jam, loket yang buka sedikit sekali",
    "Estimasi waktu tunggu di tiket tidak sesuai",
    "Antrean terlalu lama, padahal hanya mau setor tunai",
    "Jam makan siang hanya satu teller yang melayani",
]
COMMENTS_UNHAPPY = [
    "Petugas kurang ramah",
    "Harus bolak-balik karena dokumen kurang, tidak dijelaskan dari awal",
    "Biaya administrasi tidak dijelaskan",
    "AC di ruang tunggu panas sekali",
    "Sistem sedang gangguan, harus datang lagi besok",
]
COMMENTS_HAPPY = [
    "Pelayanan cepat dan ramah, terima kasih",
    "Petugasnya sabar menjelaskan",
    "Prosesnya mudah, tidak lama",
    "Mantap, antre lewat aplikasi jadi tidak perlu lama menunggu",
    "Ruang tunggu bersih dan nyaman",
]


def _staff_by_service(branch: Branch) -> dict[int, list[User]]:
    """{service id: staff members of the branch competent for it}, by username."""
    rows = db.session.execute(
        select(user_services.c.service_id, User)
        .join(User, User.id == user_services.c.user_id)
        .join(user_branches, user_branches.c.user_id == User.id)
        .where(user_branches.c.branch_id == branch.id, User.role == Role.STAFF)
        .order_by(User.username)
    ).all()
    result: dict[int, list[User]] = {}
    for service_id, user in rows:
        result.setdefault(service_id, []).append(user)
    return result


def _nps(rng: random.Random, mood: float) -> int:
    """An NPS answer for a customer of `mood` (about 0 unhappy .. 1 delighted)."""
    value = rng.gauss(4 + 6.5 * mood, 1.6)
    return max(0, min(10, round(value)))


def _five(rng: random.Random, mood: float) -> int:
    return max(1, min(5, round(rng.gauss(1.6 + 3.6 * mood, 0.75))))


def _reasons(rng: random.Random, nps: int, long_wait: bool) -> list[str]:
    if nps >= 9:
        return []
    pool = ["staff_attitude", "staff_competence", "process", "product", "facilities"]
    picked = []
    if long_wait and rng.random() < 0.85:
        picked.append("waiting_time")
    if (nps <= 6 and (not picked or rng.random() < 0.4)) or (
        nps <= 8 and not picked and rng.random() < 0.3
    ):
        picked.append(rng.choice(pool))
    return picked


def write_history_feedback(branch: Branch, now) -> int:
    """Ratings for a share of `branch`'s finished visit steps before today that have none.
    Returns how many were written."""
    rng = random.Random(f"demo-feedback-{branch.code}")  # repeatable demo data  # nosec B311
    today = branch.business_day(now)
    rated = select(FeedbackResponse.ticket_id).where(FeedbackResponse.branch_id == branch.id)
    tickets = db.session.execute(
        select(
            Ticket.id,
            Ticket.visit_id,
            Ticket.service_id,
            Ticket.counter_id,
            Ticket.staff_id,
            Visit.customer_id,
            Ticket.business_day,
            Ticket.issued_at,
            Ticket.called_at,
            Ticket.started_at,
            Ticket.finished_at,
            Ticket.quoted_wait_s,
            Ticket.step,
        )
        .join(Visit, Visit.id == Ticket.visit_id)
        .where(
            Ticket.branch_id == branch.id,
            Ticket.status == TicketStatus.FINISHED,
            Ticket.business_day < today,
            Ticket.called_at.is_not(None),
            Ticket.id.not_in(rated),
        )
        .order_by(Ticket.id)
    ).all()
    targets = {s.id: s.target_wait_s for s in branch.services}
    staff = _staff_by_service(branch)
    # each member of staff leaves customers a little happier or less happy than average
    effect = {u.id: rng.uniform(-0.12, 0.12) for users in staff.values() for u in users}
    rows = []
    for t in tickets:
        if rng.random() >= RESPONSE_RATE:
            continue
        wait_s = round((t.called_at - t.issued_at).total_seconds())
        service_s = round((t.finished_at - t.started_at).total_seconds()) if t.started_at else None
        target = targets.get(t.service_id, 900)
        # the wait told at arrival: the history has none, so make one up around the target
        # load; about half the customers wait longer than they were told
        quoted = t.quoted_wait_s
        if quoted is None:
            quoted = max(60, round(wait_s * rng.uniform(0.65, 1.45) / 60) * 60)
        staff_id = t.staff_id
        if staff_id is None and staff.get(t.service_id):
            staff_id = rng.choice(staff[t.service_id]).id
        ratio = wait_s / target
        mood = 0.92 - 0.28 * max(0.0, ratio - 0.5) + effect.get(staff_id, 0.0)
        if wait_s > quoted * 1.2:
            mood -= 0.2  # told one thing, waited longer
        mood = max(0.0, min(1.0, mood + rng.gauss(0, 0.12)))
        nps = _nps(rng, mood)
        csat = _five(rng, mood)
        ces = _five(rng, min(1.0, mood + 0.05)) if rng.random() < CES_RATE else None
        long_wait = ratio > 1.2
        reasons = _reasons(rng, nps, long_wait)
        comment = None
        if rng.random() < (COMMENT_RATE_UNHAPPY if nps <= 6 else COMMENT_RATE):
            if nps <= 6:
                comment = rng.choice(COMMENTS_LONG_WAIT if long_wait else COMMENTS_UNHAPPY)
            elif nps >= 9:
                comment = rng.choice(COMMENTS_HAPPY)
        draw, channel = rng.random(), CHANNELS[-1]
        for option in CHANNELS:
            if draw < option[1]:
                channel = option
                break
            draw -= option[1]
        kind, _weight, (low, high) = channel
        rows.append(
            {
                "ticket_id": t.id,
                "visit_id": t.visit_id,
                "branch_id": branch.id,
                "service_id": t.service_id,
                # a QR or link rating still names the counter and person that served
                "counter_id": t.counter_id,
                "staff_id": staff_id,
                "customer_id": t.customer_id,
                "channel": kind,
                "nps": nps,
                "csat": csat,
                "ces": ces,
                "reasons": reasons,
                "comment": comment,
                "locale": branch.locale,
                "submitted_at": t.finished_at + timedelta(seconds=rng.randrange(low, high)),
                "business_day": t.business_day,
                "wait_s": wait_s,
                "quoted_wait_s": quoted,
                "service_s": service_s,
                "transfers": t.step - 1,
            }
        )
    if rows:
        db.session.execute(insert(FeedbackResponse), rows)
    return len(rows)


def write_feedback(branch_codes, now) -> int:
    """Ratings for the history of the branches `branch_codes`; how many were written."""
    written = 0
    for code in branch_codes:
        branch = db.session.scalar(select(Branch).where(Branch.code == code))
        if branch is not None:
            written += write_history_feedback(branch, now)
    return written
