"""The demo's ratings of its visit history: plausible, on the right tickets and days, no cases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from queue_app.cases.models import Case
from queue_app.demo import data
from queue_app.demo.seed import seed
from queue_app.extensions import db
from queue_app.feedback import metric_queries as mq
from queue_app.feedback.models import FeedbackResponse
from queue_app.notify.models import OutboxMessage
from queue_app.tickets.models import Ticket, TicketStatus

from .apihelp import fast_passwords

NOW = datetime(2026, 3, 3, 3, 0, tzinfo=UTC)


def test_the_demo_history_is_rated(app_ctx, monkeypatch):
    fast_passwords(monkeypatch)
    monkeypatch.setitem(app_ctx.config, "DEMO_HISTORY", True)
    seed(NOW)
    db.session.commit()

    finished = db.session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.status == TicketStatus.FINISHED)
    )
    # the history's ratings (the demo cases of cases/demo.py bring responses of their own)
    of_cases = select(Case.response_id)
    responses = db.session.scalars(
        select(FeedbackResponse).where(FeedbackResponse.id.not_in(of_cases))
    ).all()
    # about a third of the finished visits are rated
    assert 0.25 * finished < len(responses) < 0.45 * finished
    tickets = {
        t.id: t
        for t in db.session.scalars(
            select(Ticket).where(Ticket.id.in_([r.ticket_id for r in responses]))
        )
    }
    for r in responses:
        ticket = tickets[r.ticket_id]
        assert ticket.status == TicketStatus.FINISHED
        assert (r.branch_id, r.service_id, r.business_day) == (
            ticket.branch_id,
            ticket.service_id,
            ticket.business_day,
        )
        assert r.wait_s == round((ticket.called_at - ticket.issued_at).total_seconds())
        assert r.submitted_at >= ticket.finished_at
        assert 0 <= r.nps <= 10 and 1 <= r.csat <= 5 and (r.ces is None or 1 <= r.ces <= 5)
    assert {r.channel.value for r in responses} == {"tablet", "qr", "link"}
    assert any(r.comment == "Antrean terlalu lama" for r in responses)
    assert any("waiting_time" in r.reasons for r in responses)
    # the history's ratings are written directly and open no case: the only cases are the
    # demo's own stories (cases/demo.py: six per branch, three branches); no message is sent
    cases = db.session.scalars(select(Case)).all()
    assert len(cases) == 18 and {c.level for c in cases} == {1, 2, 3}
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    # the longer the wait, the lower the NPS; a kept quote scores better than a broken one
    days = sorted({r.business_day for r in responses})
    report = mq.report(None, days[0], days[-1])
    scores = [b.tally.nps().score for b in report.by_wait if b.key != "unknown"]
    assert scores == sorted(scores, reverse=True), scores
    assert report.by_quote["kept"].nps().score > report.by_quote["not_kept"].nps().score
    # mostly content customers, still with detractors
    total = report.total.nps()
    assert 10 < total.score < 70 and total.detractors > 0
    assert {tp.item.code for tp in report.touchpoints["branch"]} == set(data.HISTORY_BRANCHES)
