"""Turning domain objects into the plain data the schemas dump."""

from ..branches.models import Branch, Counter, Service
from ..i18n import select_locale
from ..tickets import fastpath, queries
from ..tickets.fastpath import Issued
from ..tickets.models import Ticket, TicketStatus


def _locale() -> str:
    # the language code itself: babel's `get_locale()` would build (and stat) a Locale object
    # per request for the same answer
    return select_locale()


def branch(b: Branch, now) -> dict:
    return {
        "code": b.code,
        "name": b.name,
        "timezone": b.timezone,
        "locale": b.locale,
        "country": b.country,
        "city": b.city,
        "address": b.address,
        "opening_hours": b.opening_hours or {},
        "is_open": b.is_open_at(now),
        "priority_policy": b.priority_policy.value,
    }


def service(s: Service, waiting: int, open_counters: int) -> dict:
    return {
        "code": s.code,
        "name": s.display_name(_locale()),
        "names": s.names or {},
        "prefix": s.prefix,
        "segment": s.segment,
        "expected_duration_s": s.expected_duration_s,
        "target_wait_s": s.target_wait_s,
        "waiting": waiting,
        "open_counters": open_counters,
    }


def counter_ref(c: Counter | None) -> dict | None:
    return {"id": c.id, "name": c.name} if c is not None else None


def ticket(t: Ticket, *, with_token: bool = False, standing=None) -> dict:
    """`standing` (position, estimated wait), when the caller computed it for a whole list."""
    if standing is None:
        # a ticket just issued in one statement comes with its standing (tickets/fastpath.py)
        standing = fastpath.precomputed_standing(t) or queries.standing(t)
    pos, wait_s = standing
    data = {
        "id": t.id,
        "number": t.number,
        "status": t.status,
        "branch": t.branch.code,
        "service": t.service.code,
        "service_name": t.service.display_name(_locale()),
        "priority": t.priority,
        "source": t.source,
        "step": t.step,
        "position": pos,
        "estimated_wait_s": wait_s,
        "issued_at": t.issued_at,
        "queue_since": t.queue_since,
        "called_at": t.called_at,
        "started_at": t.started_at,
        "finished_at": t.finished_at,
        "recall_count": t.recall_count,
        "counter": counter_ref(t.counter),
        "outcome_code": t.outcome_code,
        "handover_note": t.handover_note,
    }
    if with_token:
        data["token"] = t.token
    return data


def just_issued(t: Ticket) -> dict:
    """`ticket(t, with_token=True)` of a ticket this request issued: its place and the wait it
    was quoted at issue (`Ticket.quoted_wait_s`), as `issued` answers for the one-statement
    path (tests/test_fastpath.py compares the bytes)."""
    standing = fastpath.precomputed_standing(t) or queries.issue_standing(t)
    return ticket(t, with_token=True, standing=standing)


def language() -> str:
    """The language of the answer's names (what `ticket` uses for `service_name`)."""
    return _locale()


def issued(i: Issued) -> dict:
    """`ticket(t, with_token=True)` of a ticket just issued by `tickets.services.issue_plain`:
    the same keys and values, from what its one statement returned."""
    return {
        "id": i.id,
        "number": i.number,
        "status": TicketStatus.WAITING,
        "branch": i.branch_code,
        "service": i.service_code,
        "service_name": i.service_name,
        "priority": i.priority,
        "source": i.source,
        "step": 1,
        "position": i.position,
        "estimated_wait_s": i.estimated_wait_s,
        "issued_at": i.issued_at,
        "queue_since": i.issued_at,
        "called_at": None,
        "started_at": None,
        "finished_at": None,
        "recall_count": 0,
        "counter": None,
        "outcome_code": None,
        "handover_note": None,
        "token": i.token,
    }


def counter(c: Counter, current: Ticket | None) -> dict:
    return {
        "id": c.id,
        "name": c.name,
        "services": [s.code for s in c.services],
        "status": c.status,
        "pause_reason": c.pause_reason,
        "staff": (
            {"username": c.staff.username, "display_name": c.staff.display_name}
            if c.staff
            else None
        ),
        "current_ticket": ticket(current) if current else None,
    }


def _local_iso(branch: Branch, moment) -> str:
    return branch.local(moment).isoformat()


def slot(branch: Branch, s) -> dict:
    """A `booking.services.Slot`, its times with the branch's UTC offset."""
    return {
        "start": _local_iso(branch, s.start),
        "end": _local_iso(branch, s.end),
        "available": s.available,
        "capacity": s.capacity,
    }


def appointment(a) -> dict:
    return {
        "code": a.code,
        "status": a.status.value,
        "branch": a.branch.code,
        "service": a.service.code,
        "service_name": a.service.display_name(_locale()),
        "start": _local_iso(a.branch, a.start),
        "end": _local_iso(a.branch, a.end),
        "name": a.name,
        "checked_in_at": _local_iso(a.branch, a.checked_in_at) if a.checked_in_at else None,
    }
