"""Hand-built ticket history for the report and staffing tests: one row per ticket with
explicit local times, written straight to the tables (the engine's own paths are tested
elsewhere; here the history must be exactly what the expected figures were worked out from).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from queue_app.accounts.models import Role
from queue_app.extensions import db
from queue_app.tickets.models import Ticket, TicketStatus, Visit

S = TicketStatus

_seq = {"n": 0}


def local(branch, text: str) -> datetime:
    """`2026-03-02 09:00` in the branch's zone, as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(branch.timezone))


def add(
    branch,
    service,
    issued: str,
    *,
    wait_s: float | None = None,
    service_s: float | None = None,
    status: TicketStatus = TicketStatus.FINISHED,
    counter=None,
    staff=None,
    left_after_s: float | None = None,
) -> Ticket:
    """One ticket issued at local time `issued`; called `wait_s` later (None: never), served
    `service_s` from the call; an abandoned one (cancelled, never called) left
    `left_after_s` after issue."""
    at = local(branch, issued)
    _seq["n"] += 1
    visit = Visit(branch_id=branch.id, token=secrets.token_hex(24), arrived_at=at)
    db.session.add(visit)
    called = at + timedelta(seconds=wait_s) if wait_s is not None else None
    started = finished = None
    if service_s is not None:
        started = called
        finished = called + timedelta(seconds=service_s)
    elif status in (TicketStatus.NO_SHOW,) and called is not None:
        finished = called + timedelta(minutes=3)
    elif status == TicketStatus.CANCELLED and left_after_s is not None:
        finished = at + timedelta(seconds=left_after_s)
    ticket = Ticket(
        visit=visit,
        step=1,
        branch_id=branch.id,
        service_id=service.id,
        business_day=at.date(),
        sequence=_seq["n"],
        number=f"{service.prefix}{_seq['n']:03d}",
        status=status,
        issued_at=at,
        queue_since=at,
        called_at=called,
        last_called_at=called,
        started_at=started,
        finished_at=finished,
        counter_id=counter.id if counter is not None and called is not None else None,
        staff_id=staff.id if staff is not None and called is not None else None,
    )
    db.session.add(ticket)
    db.session.flush()
    return ticket


def week_history(make) -> dict:
    """The history of tests/test_reports.py (its docstring has the table)."""
    b = make.branch(
        "MKS01",
        timezone="Asia/Makassar",
        services=[("teller", "A", 240), ("cs", "B", 720)],
        counters=[("T1", ["teller"]), ("T2", ["teller"]), ("CS1", ["cs"])],
    )
    other = make.branch("JKT09", timezone="Asia/Jakarta")
    teller, cs = make.service(b, "teller"), make.service(b, "cs")
    teller.target_wait_s = 600
    t1, t2, cs1 = (make.counter(b, n) for n in ("T1", "T2", "CS1"))
    budi = make.user("budi", branches=[b])
    siti = make.user("siti", branches=[b])
    users = {
        "manager": make.user("dewi", role=Role.BRANCH_MANAGER, branches=[b]),
        "other_manager": make.user("joko", role=Role.BRANCH_MANAGER, branches=[other]),
        "executive": make.user("rudi", role=Role.EXECUTIVE),
        "cx": make.user("lina", role=Role.CX_AGENT, branches=[other]),
        "admin": make.user("admin", role=Role.ADMIN),
        "staff": budi,
    }
    F, C, N = S.FINISHED, S.CANCELLED, S.NO_SHOW
    add(b, teller, "2026-03-02 09:00", wait_s=300, service_s=240, counter=t1, staff=budi)
    add(b, teller, "2026-03-02 09:10", wait_s=1200, service_s=360, counter=t1, staff=budi)
    add(b, teller, "2026-03-02 09:20", wait_s=120, service_s=600, counter=t2, staff=siti)
    add(b, teller, "2026-03-02 09:40", status=C, left_after_s=900)
    add(b, teller, "2026-03-02 10:05", wait_s=600, status=N, counter=t2, staff=siti)
    add(b, cs, "2026-03-02 10:10", wait_s=1800, service_s=1200, counter=cs1, staff=budi)
    add(b, cs, "2026-03-02 00:30", wait_s=600, service_s=600, counter=cs1, staff=budi)
    add(b, cs, "2026-03-08 23:30", status=C, left_after_s=1200)
    add(b, cs, "2026-03-09 07:30", wait_s=300, service_s=300, counter=cs1, staff=budi)
    add(b, teller, "2026-04-01 01:00", wait_s=60, service_s=60, counter=t1, staff=budi)
    add(b, teller, "2026-03-01 00:30", wait_s=60, service_s=60, counter=t1, staff=budi)
    assert F  # the default status of rr.add
    headers = {name: make.auth(u) for name, u in users.items()}
    db.session.commit()
    return {
        "branch": b,
        "other": other,
        "teller": teller,
        "cs": cs,
        "counters": {"T1": t1, "T2": t2, "CS1": cs1},
        "budi": budi,
        "siti": siti,
        "users": users,
        "headers": headers,
    }


def monday_history(make) -> dict:
    """MKS02 (Asia/Makassar). Mondays 2 (10 teller tickets), 9 (12) and 16 March (8) at
    09:00 + 5 min each, called at once, served 240 s at T1; each of those Mondays two cs
    tickets at 10:00: one called after 300 s and served 600 s at CS1, one gone after 900 s.
    Monday 23 March: closed, no tickets. The day planned: Monday 30 March."""
    b = make.branch(
        "MKS02",
        timezone="Asia/Makassar",
        services=[("teller", "A", 240), ("cs", "B", 720), ("loans", "C", 1200)],
        counters=[("T1", ["teller"]), ("T2", ["teller", "cs"]), ("CS1", ["cs"])],
    )
    teller, cs = make.service(b, "teller"), make.service(b, "cs")
    t1, cs1 = make.counter(b, "T1"), make.counter(b, "CS1")
    budi = make.user("budi", branches=[b])
    for day, count in (("2026-03-02", 10), ("2026-03-09", 12), ("2026-03-16", 8)):
        for i in range(count):
            at = f"{day} 09:{5 * i:02d}"
            add(b, teller, at, wait_s=0, service_s=240, counter=t1, staff=budi)
        add(b, cs, f"{day} 10:00", wait_s=300, service_s=600, counter=cs1, staff=budi)
        add(b, cs, f"{day} 10:00", status=S.CANCELLED, left_after_s=900)
    # a Tuesday is not history for a Monday
    add(b, teller, "2026-03-24 09:00", wait_s=0, service_s=240, counter=t1, staff=budi)
    other = make.branch("JKT08")
    users = {
        "manager": make.user("dewi", role=Role.BRANCH_MANAGER, branches=[b]),
        "other_manager": make.user("joko", role=Role.BRANCH_MANAGER, branches=[other]),
        "executive": make.user("rudi", role=Role.EXECUTIVE),
        "staff": budi,
    }
    headers = {name: make.auth(u) for name, u in users.items()}
    db.session.commit()
    return {"branch": b, "teller": teller, "cs": cs, "users": users, "headers": headers}


def busy_weeks(branch, staff, first_day: str, weeks: int = 4) -> int:
    """A fuller, deterministic history for the browser pages: every weekday of `weeks` weeks
    from `first_day` (a Monday), teller and cs tickets between 08:00 and 15:00 with waits and
    service times that follow a fixed pattern; a few leave, a few are no-shows."""
    from datetime import date as date_

    services = {s.code: s for s in branch.services}
    counters = {c.name: c for c in branch.counters}
    start = date_.fromisoformat(first_day)
    count = 0
    for offset in range(weeks * 7):
        day = start + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for hour in range(8, 15):
            peak = 3 if hour in (9, 12) else 2 if hour in (10, 11, 13) else 1
            for i in range(3 * peak + day.weekday() % 2):
                code = "teller" if i % 3 else "cs"
                minute = (i * 17 + offset * 7) % 60
                wait = ((i * 131 + hour * 37 + offset * 53) % (peak * 600)) + 30
                at = f"{day.isoformat()} {hour:02d}:{minute:02d}"
                counter = counters["CS1"] if code == "cs" else counters["T1" if i % 2 else "T2"]
                member = staff[i % len(staff)]
                if (i + offset) % 23 == 0:
                    add(branch, services[code], at, status=S.CANCELLED, left_after_s=wait)
                elif (i + offset) % 29 == 0:
                    add(
                        branch,
                        services[code],
                        at,
                        wait_s=wait,
                        status=S.NO_SHOW,
                        counter=counter,
                        staff=member,
                    )
                else:
                    service_s = 180 + (i * 97 + offset * 31) % (600 if code == "cs" else 300)
                    add(
                        branch,
                        services[code],
                        at,
                        wait_s=wait,
                        service_s=service_s,
                        counter=counter,
                        staff=member,
                    )
                count += 1
    return count
