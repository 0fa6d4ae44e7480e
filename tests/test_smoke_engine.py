from queue_app.accounts.models import Role
from queue_app.tickets import services as engine
from queue_app.tickets.models import TicketStatus


def test_issue_call_serve_finish(make, session, now):
    b = make.branch("JKT99")
    staff = make.user("budi", branches=[b])
    counter = make.counter(b, "Loket 1")
    first = make.ticket(b, "teller", now=now)
    second = make.ticket(b, "teller", now=now)
    assert (first.number, second.number) == ("A001", "A002")
    make.open_counter(counter, staff, now=now)
    called = engine.call_next(counter, staff, now=now)
    assert called.id == first.id and called.status == TicketStatus.CALLED
    engine.start(called, staff, now=now)
    engine.finish(called, staff, now=now, outcome="cash_deposit")
    session.commit()
    assert called.status == TicketStatus.FINISHED
    assert make.user("mgr", role=Role.BRANCH_MANAGER, branches=[b]).can_work_floor(b)
