"""Ordering of the tickets a counter may call.

The input is plain data, so the rules are tested without a database. `call_next` takes the
first ticket of the ordered list that it can still claim, and falls back to the next one when
another counter got there first.

The order, for one counter:

1. tickets sent to this very counter (transfer to a counter, resume after hold), oldest first;
2. checked-in appointments that are due (from `early` before their time to `grace` after),
   earliest appointment first;
3. everything else under the branch's priority policy. Services are taken in the counter's
   priority order (the first service in its list that has a ticket waiting, as in the design
   brief's default routing); within a service:
   - strict: higher priority class first, then the order of arrival;
   - interleave N:M: N priority tickets, then M normal ones, and so on (per counter); when the
     turn's kind has nobody waiting, the other kind is called and the turn does not advance;
   - aging: the longest effective wait first, where a priority class adds `boost * rank`
     seconds to the time waited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..branches.models import PriorityPolicy


@dataclass(frozen=True)
class Candidate:
    id: int
    service_id: int
    rank: int  # 0 normal, higher is more urgent
    queue_since: datetime
    appointment_due_at: datetime | None = None
    target_counter_id: int | None = None


@dataclass(frozen=True)
class Policy:
    kind: PriorityPolicy = PriorityPolicy.STRICT
    interleave_priority: int = 1
    interleave_normal: int = 2
    aging_boost_s: int = 600
    appointment_early_s: int = 300
    appointment_grace_s: int = 900


def interleave_turn_is_priority(policy: Policy, pos: int) -> bool:
    return (
        pos % (policy.interleave_priority + policy.interleave_normal) < policy.interleave_priority
    )


def next_interleave_pos(policy: Policy, pos: int, called_rank: int) -> int:
    """Advance the N:M cycle only when the call matched the turn."""
    cycle = policy.interleave_priority + policy.interleave_normal
    if (called_rank > 0) == interleave_turn_is_priority(policy, pos):
        return (pos + 1) % cycle
    return pos % cycle


def order(
    candidates: list[Candidate],
    *,
    counter_id: int,
    service_order: list[int],
    policy: Policy,
    now: datetime,
    interleave_pos: int = 0,
) -> list[Candidate]:
    """Every candidate this counter may call, best first."""
    index = {service_id: i for i, service_id in enumerate(service_order)}
    targeted, due, rest = [], [], []
    for c in candidates:
        if c.target_counter_id is not None:
            if c.target_counter_id == counter_id:
                targeted.append(c)
            continue
        if c.service_id not in index:
            continue
        if c.appointment_due_at is not None and _is_due(c.appointment_due_at, policy, now):
            due.append(c)
        else:
            rest.append(c)

    targeted.sort(key=lambda c: (c.queue_since, c.id))
    due.sort(key=lambda c: (c.appointment_due_at, c.queue_since, c.id))

    def arrival(c):
        return (index[c.service_id], -c.rank, c.queue_since, c.id)

    if policy.kind == PriorityPolicy.AGING:

        def aged(c):
            waited = (now - c.queue_since).total_seconds()
            return (index[c.service_id], -(waited + c.rank * policy.aging_boost_s), c.id)

        rest.sort(key=aged)
    elif policy.kind == PriorityPolicy.INTERLEAVE:
        rest.sort(key=arrival)
        first_service = index[rest[0].service_id] if rest else None
        head = [c for c in rest if index[c.service_id] == first_service]
        tail = [c for c in rest if index[c.service_id] != first_service]
        prio = [c for c in head if c.rank > 0]
        normal = [c for c in head if c.rank == 0]
        head = (
            prio + normal if interleave_turn_is_priority(policy, interleave_pos) else normal + prio
        )
        rest = head + tail
    else:
        rest.sort(key=arrival)
    return targeted + due + rest


def _is_due(due_at: datetime, policy: Policy, now: datetime) -> bool:
    seconds = (now - due_at).total_seconds()
    return -policy.appointment_early_s <= seconds <= policy.appointment_grace_s
