"""Live estimates for a branch from the database: the state now and distributions learned from the
last weeks of finished tickets, through the estimator.

`branch_estimates(branch, now)` returns `Estimates` keyed by ticket id and service id. Results
are cached per process by (branch id, branch.event_seq): every change of a branch bumps its
sequence, so a burst of readers (kiosk, phones, display, dashboard) after one change costs one
estimate. The learned model (service times, arrivals per hour and the share of them in a higher
priority class, abandonment) is cached per (branch id, business day, weeks). Reading only: this
module never writes.

Cost control (an estimate costs about 10 ms of CPU at 50 runs, `bench/ewt_speed.py`): the
estimator runs at most once per branch per `EWT_MIN_INTERVAL_S` (config) per process. A change
less than that after the last run is *pending*: readers get the last result until a read after
the interval (the realtime pusher reads after every committed change, snapshots read on
(re)connect) makes the new one; `pending` tells the pusher that a read got an older estimate,
and it re-pushes once the interval ends (`realtime/pushes.py`), so a last change inside the
interval still reaches the screens. Runs per estimate: `EWT_RUNS`. The issue path only reads the
cache (`last_estimates`), except on a cold process, where `quote` computes once before the
ticket's rows are written.

Across processes (`EWT_SHARED`, on by default with a `REDIS_URL`): the web and realtime
processes share each branch's latest estimate in Redis (`waits/shared.py`), so a change is
estimated once in the network, at most once per branch per `EWT_MIN_INTERVAL_S`. A reader of a
change not in its process cache uses the stored estimate if it was made for that change (and
keeps it here); an older one made less than the interval ago stands, pending as above (its wall-
clock moment becomes a moment of the local clock for `pending`); otherwise the reader claims the
estimate (`SET NX PX`), makes it, stores it and releases the claim. A reader that loses the
claim gets the last estimate as pending (the pusher asks again a moment later), or, when this
process has none yet, makes its own at once (never waits). Redis failing never fails a read: the
process estimates by itself as before (`shared.Unavailable`). `runs_made` still counts the runs
of this process; `clear_cache` empties this process's cache only (`shared.clear` the Redis
keys).

Every surface asks here: `live_now(branch)` estimates the branch as of its last change (the
time of its last journal entry: the same answer in every process, and what the replay calls
"what was known at arrival"); `Live.new_wait`/`Live.ticket_wait` give an `Estimate`, or None
where no open counter serves the ticket ("no estimate", as before); `wire` turns one into the
`estimated_wait_s` and `estimated_wait_range` every payload carries.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from ..branches.models import Branch, Counter, CounterStatus
from ..branches.plans import branch_span, counter_absences, staffed_until
from ..core.types import utcnow
from ..extensions import db
from ..routing.policy import Policy
from ..tickets.models import PRIORITY_RANK, JourneyEvent, Ticket, TicketStatus
from . import shared
from .estimator import Estimate, Estimates, estimate
from .model import (
    BUSY,
    CLOSED,
    IDLE,
    PAUSED,
    Abandonment,
    ArrivalRates,
    BranchState,
    CounterState,
    ServiceTimes,
    WaitingTicket,
    WaitModel,
)

_lock = threading.Lock()
_results: OrderedDict = OrderedDict()  # (branch id, event_seq, runs) -> Live
_models: OrderedDict = OrderedDict()  # (branch id, business day, weeks) -> WaitModel
_latest: dict = {}  # (branch id, runs) -> (monotonic time of the run, Live): the rate limit
_asked: dict = {}  # (branch id, runs) -> the latest event_seq a read asked for while pending
# (branch id, runs) -> monotonic moment before which another process's claimed estimate is
# not expected (EWT_SHARED: a reader lost the claim)
_retry: dict = {}
_MAX = 256
DEFAULT_INTERVAL_S = 2.0
DEFAULT_RUNS = 50  # bench/ewt_eval.py: RMSE within 1-2 % of 100 runs, half the CPU
PRIORITY_PRIOR_N = 10.0
LOST_CLAIM_RETRY_S = 0.1  # EWT_SHARED: ask again this long after losing the claim
runs_made = 0  # estimator runs in this process (tests read it)


def clear_cache() -> None:
    with _lock:
        _results.clear()
        _models.clear()
        _latest.clear()
        _asked.clear()
        _retry.clear()


def _setting(name: str, default):
    if has_app_context():
        value = current_app.config.get(name)
        if value is not None:
            return type(default)(value)
    return default


def _remember(cache: OrderedDict, key, value) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > _MAX:
            cache.popitem(last=False)


def learned_model(branch: Branch, now: datetime, *, weeks: int = 4) -> WaitModel:
    """Service times per service and local hour, arrivals per service and local hour (mean per
    business day with tickets), and one abandonment hazard, from the `weeks` before today."""
    today = branch.business_day(now)
    key = (branch.id, today, weeks)
    with _lock:
        cached = _models.get(key)
    if cached is not None:
        return cached
    since = branch.day_bounds(today - timedelta(weeks=weeks))[0]
    until = branch.day_bounds(today)[0]
    rows = db.session.execute(
        select(
            Ticket.service_id,
            Ticket.status,
            Ticket.queue_since,
            Ticket.called_at,
            Ticket.started_at,
            Ticket.finished_at,
            Ticket.business_day,
            Ticket.priority,
        ).where(
            Ticket.branch_id == branch.id,
            Ticket.queue_since >= since,
            Ticket.queue_since < until,
        )
    ).all()
    expected = {s.id: float(s.expected_duration_s) for s in branch.services}
    prior_cv = _setting("EWT_PRIOR_CV", 0.8)
    st = ServiceTimes(expected, prior_cv=prior_cv)
    per_hour: dict = {}
    arrived: dict = {}
    urgent: dict = {}
    days = set()
    abandoned, exposure = 0, 0.0
    for r in rows:
        days.add(r.business_day)
        hour = branch.local(r.queue_since).hour
        per_hour[(r.service_id, hour)] = per_hour.get((r.service_id, hour), 0) + 1
        arrived[r.service_id] = arrived.get(r.service_id, 0) + 1
        if PRIORITY_RANK[r.priority] > 0:
            urgent[r.service_id] = urgent.get(r.service_id, 0) + 1
        if r.status == TicketStatus.FINISHED and r.started_at and r.finished_at:
            st.add(
                r.service_id,
                (r.finished_at - r.started_at).total_seconds(),
                hour=branch.local(r.started_at).hour,
            )
        left = r.called_at or r.finished_at
        if left is not None:
            exposure += max(0.0, (left - r.queue_since).total_seconds())
        if r.called_at is None and r.status in (TicketStatus.CANCELLED, TicketStatus.NO_SHOW):
            abandoned += 1
    n_days = max(1, len(days))
    rates = ArrivalRates(per_hour={k: v / n_days for k, v in per_hour.items()})
    # the share of arrivals in a higher priority class: they will go ahead of a ticket waiting
    # now (PRIORITY_PRIOR_N normal arrivals as the prior, as the replay learns it)
    rates.priority_share = {s: n / (arrived[s] + PRIORITY_PRIOR_N) for s, n in urgent.items()}
    offset = int(branch.local(now).utcoffset().total_seconds())
    model = WaitModel(st, rates, Abandonment.from_counts(abandoned, exposure), utc_offset_s=offset)
    _remember(_models, key, model)
    return model


def branch_state(branch: Branch, now: datetime, *, pause_s: float = 900.0) -> BranchState:
    today = branch.business_day(now)
    # with their service links in the same statement (read per counter, they were one
    # statement each)
    counters = (
        db.session.scalars(
            select(Counter)
            .options(joinedload(Counter.service_links))
            .where(Counter.branch_id == branch.id)
        )
        .unique()
        .all()
    )
    active = db.session.execute(
        select(
            Ticket.id,
            Ticket.service_id,
            Ticket.status,
            Ticket.priority,
            Ticket.queue_since,
            Ticket.appointment_due_at,
            Ticket.target_counter_id,
            Ticket.counter_id,
            Ticket.called_at,
            Ticket.last_called_at,
            Ticket.arrival_confirmed,
        ).where(
            Ticket.branch_id == branch.id,
            Ticket.business_day == today,
            Ticket.status.in_((TicketStatus.WAITING, TicketStatus.CALLED, TicketStatus.SERVING)),
        )
    ).all()
    in_service = {
        r.counter_id: r
        for r in active
        if r.status in (TicketStatus.CALLED, TicketStatus.SERVING) and r.counter_id is not None
    }
    states = []
    span = branch_span(branch, today)
    for c in sorted(counters, key=lambda c: c.position):
        services = tuple(link.service_id for link in c.service_links)
        # the counter's plan (branches/plans.py): its absences still ahead; one it is inside
        # now is left out (an open counter may work through it, a paused one returns at its
        # end); it closes at its own planned end when that is earlier than the branch's
        ahead = [(a, b) for a, b in counter_absences(c, today) if b > now]
        inside = next(((a, b) for a, b in ahead if a <= now), None)
        later = tuple(p for p in ahead if p != inside)
        until = staffed_until(c, today)
        closes = until if span and until and now < until < span[1] else None
        if c.status == CounterStatus.OPEN:
            r = in_service.get(c.id)
            if r is not None:
                states.append(
                    CounterState(
                        c.id,
                        services,
                        BUSY,
                        busy_since=r.last_called_at or r.called_at or now,
                        busy_service=r.service_id,
                        closes_at=closes,
                        breaks=later,
                    )
                )
            else:
                states.append(CounterState(c.id, services, IDLE, closes_at=closes, breaks=later))
        elif c.status == CounterStatus.PAUSED:
            since = c.status_since or now
            back = max(now + timedelta(seconds=60), since + timedelta(seconds=pause_s))
            if inside is not None:  # in a planned absence: back at its end, or not today
                back = inside[1] if span and until and inside[1] <= until else None
            elif span and until and until < span[1] and now >= until:  # after its own closing
                back = None
            states.append(
                CounterState(
                    c.id, services, PAUSED, returns_at=back, closes_at=closes, breaks=later
                )
            )
        else:
            states.append(CounterState(c.id, services, CLOSED))
    waiting = tuple(
        WaitingTicket(
            r.id,
            r.service_id,
            r.queue_since,
            rank=PRIORITY_RANK[r.priority],
            appointment_due_at=r.appointment_due_at,
            target_counter=r.target_counter_id,
        )
        for r in active
        if r.status == TicketStatus.WAITING and r.arrival_confirmed
    )
    spans = branch.hours_on(today)
    closing = None
    if spans:
        closing = datetime.combine(today, max(b for _, b in spans), tzinfo=branch.tz)
    policy = Policy(
        kind=branch.priority_policy,
        interleave_priority=branch.interleave_priority,
        interleave_normal=branch.interleave_normal,
        aging_boost_s=branch.aging_boost_s,
        appointment_early_s=branch.appointment_early_s,
        appointment_grace_s=branch.appointment_grace_s,
    )
    return BranchState(
        now=now,
        counters=tuple(states),
        waiting=waiting,
        closing_at=closing,
        policy=policy,
        offered=tuple(s.id for s in sorted(branch.services, key=lambda s: s.position)),
    )


@dataclass(frozen=True)
class Live:
    at: datetime  # the moment the estimate was made (the first read after the last change)
    estimates: Estimates
    serving: frozenset = frozenset()  # services with an open counter
    open_counters: frozenset = frozenset()  # ids of the open counters
    seq: int | None = None  # the branch's event sequence the estimate was made for

    def remaining_s(self, seconds: float, now: datetime) -> float:
        """A wait estimated at `at`, seen at `now`."""
        return max(0.0, seconds - (now - self.at).total_seconds())

    def new_wait(self, service_id) -> Estimate | None:
        """A ticket of the service issued now; None while no open counter serves it."""
        if service_id not in self.serving:
            return None
        return self.estimates.new.get(service_id)

    def ticket_wait(self, ticket) -> Estimate | None:
        """A waiting ticket; None while no open counter serves it (its target counter, if it
        has one). A remote ticket not yet confirmed on arrival is not in the simulation (it is
        passed over): it is told what a ticket of its service issued now would wait."""
        if ticket.target_counter_id is not None:
            if ticket.target_counter_id not in self.open_counters:
                return None
        elif ticket.service_id not in self.serving:
            return None
        found = self.estimates.tickets.get(ticket.id)
        if found is None:
            found = self.estimates.new.get(ticket.service_id)
        return found


def wire(est: Estimate | None) -> dict:
    """The fields every payload carries: the point estimate (the mean, whole seconds) and the
    range customers read ("10-15 min", `waits/text.py`); None and None: no estimate."""
    if est is None:
        return {"estimated_wait_s": None, "estimated_wait_range": None}
    return {
        "estimated_wait_s": math.ceil(est.mean_s),
        "estimated_wait_range": {
            "low_s": math.floor(est.low_s),
            "high_s": math.ceil(est.high_s),
        },
    }


def _runs(runs: int | None) -> int:
    return runs if runs is not None else _setting("EWT_RUNS", DEFAULT_RUNS)


def branch_estimates(
    branch: Branch,
    now: datetime | None = None,
    *,
    event_seq: int | None = None,
    runs: int | None = None,
    weeks: int = 4,
    clock=time.monotonic,
) -> Live:
    """Estimated waits of every waiting ticket (by ticket id) and of a new ticket of each service
    (by service id), in seconds from `Live.at`; cached per (branch, event_seq), so `at` is the
    first read after the branch's last change (use `Live.remaining_s`).

    `now`: the moment of the state; None: the time of the branch's last journal entry (or the
    clock when it has none). At most one run per branch per `EWT_MIN_INTERVAL_S` of `clock`:
    within it, a change is pending and the last result is returned. With `EWT_SHARED`, at most
    one run per branch per interval in the whole network (`_shared_estimates`).

    `event_seq`: the branch's sequence as the caller read its row in this transaction, before
    anything it shows next to the estimate (the realtime pushes); None: read here."""
    runs = _runs(runs)
    # the committed sequence, not the object's: an object kept across commits lags behind
    seq = event_seq
    if seq is None:
        seq = db.session.scalar(select(Branch.event_seq).where(Branch.id == branch.id))
    key = (branch.id, seq, runs)
    with _lock:
        cached = _results.get(key)
    if cached is not None:
        return cached
    interval = _setting("EWT_MIN_INTERVAL_S", DEFAULT_INTERVAL_S)
    tick = clock()
    if shared.enabled():
        try:
            return _shared_estimates(branch, now, seq, runs, weeks, interval, tick, clock)
        except shared.Unavailable:
            pass  # Redis is down or failing: this process's own estimate (logged in `shared`)
    with _lock:
        latest = _latest.get((branch.id, runs))
    if latest is not None and tick - latest[0] < interval:
        _ask(branch.id, runs, seq)  # a reader got an older estimate: `pending` says so
        return latest[1]  # pending: the next read after the interval makes the new one
    return _make(branch, now, seq, runs, weeks, tick)


def _make(branch: Branch, now, seq, runs: int, weeks: int, tick: float) -> Live:
    """Run the estimator for the branch's state (change `seq`) and keep the result here."""
    global runs_made
    if now is None:
        now = last_change_at(branch.id, seq) or utcnow()
    state = branch_state(branch, now)
    result = Live(
        at=now,
        estimates=estimate(
            state, learned_model(branch, now, weeks=weeks), runs=runs, seed=branch.id
        ),
        serving=frozenset(
            s for c in state.counters if c.status in (BUSY, IDLE) for s in c.services
        ),
        open_counters=frozenset(c.id for c in state.counters if c.status in (BUSY, IDLE)),
        seq=seq,
    )
    runs_made += 1
    _remember(_results, (branch.id, seq, runs), result)
    with _lock:
        _latest[(branch.id, runs)] = (tick, result)
        _retry.pop((branch.id, runs), None)
    return result


def _ask(branch_id: int, runs: int, seq) -> None:
    with _lock:
        _asked[(branch_id, runs)] = max(seq or 0, _asked.get((branch_id, runs), 0))


def _later(a, b) -> bool:
    """Whether estimate `a` was made for a later change than `b`."""
    return (a.seq if a.seq is not None else -1) > (b.seq if b.seq is not None else -1)


def _adopt(branch_id: int, runs: int, found, tick: float) -> Live:
    """An estimate read from Redis, (Live, wall-clock moment made), kept in this process: the
    object already here for its sequence if there is one (readers compare by identity), and
    the latest one unless this process knows a later one. The moment it was made becomes a
    moment of this process's clock (`tick` is `clock()` now)."""
    result, made = found
    key = (branch_id, result.seq, runs)
    with _lock:
        known = _results.get(key)
        if known is not None:
            result = known
        else:
            _results[key] = result
            _results.move_to_end(key)
            while len(_results) > _MAX:
                _results.popitem(last=False)
        latest = _latest.get((branch_id, runs))
        if latest is None or _later(result, latest[1]):
            _latest[(branch_id, runs)] = (tick - max(0.0, time.time() - made), result)
            _retry.pop((branch_id, runs), None)
    return result


def _current(result: Live, seq) -> bool:
    """Whether `result` answers a reader of change `seq` (made for it, or for a later one
    that another process read first)."""
    if result.seq is None or seq is None:
        return result.seq == seq
    return result.seq >= seq


def _standing(branch_id: int, runs: int, tick: float, interval: float) -> Live | None:
    """The branch's latest estimate known here if it was made less than the interval ago
    (in this process or, adopted, in another)."""
    with _lock:
        latest = _latest.get((branch_id, runs))
    if latest is not None and tick - latest[0] < interval:
        return latest[1]
    return None


def _stored_or_standing(branch_id: int, runs: int, seq, tick: float, interval: float):
    """The estimate in Redis if it answers change `seq` (kept here), else the latest one known
    here if it was made less than the interval ago (the change is then pending); None: an
    estimate must be made."""
    found = shared.load(branch_id, runs)
    if found is not None:
        result = _adopt(branch_id, runs, found, tick)
        if _current(result, seq):
            return result
    standing = _standing(branch_id, runs, tick, interval)
    if standing is not None:
        _ask(branch_id, runs, seq)
    return standing


def _make_and_store(branch: Branch, now, seq, runs: int, weeks: int, tick: float) -> Live:
    """Make the estimate here and store it for the other processes (made here all the same
    when Redis fails: the others make their own meanwhile)."""
    made = time.time()
    result = _make(branch, now, seq, runs, weeks, tick)
    with contextlib.suppress(shared.Unavailable):
        shared.store(branch.id, runs, result, made)
    return result


def _shared_estimates(
    branch: Branch, now, seq, runs: int, weeks: int, interval: float, tick: float, clock
) -> Live:
    """`branch_estimates` across processes (`EWT_SHARED`, `waits/shared.py`): the estimate in
    Redis if it was made for this change; if it is older but made less than the interval ago,
    it stands and the change is pending, as in one process; otherwise this reader claims the
    estimate, makes it, stores it and releases the claim. A reader that loses the claim gets
    the last estimate as pending (`pending` says when to ask again), or, with none here yet,
    makes its own at once. Raises `shared.Unavailable` (before any run) when
    Redis fails: the caller estimates in this process."""
    branch_id = branch.id
    answer = _stored_or_standing(branch_id, runs, seq, tick, interval)
    if answer is not None:
        return answer
    token = shared.claim(branch_id, runs)
    if token is None:
        return _lost_claim(branch, now, seq, runs, weeks, tick, clock)
    try:
        # read again under the claim: another process may have stored it since the first read
        answer = _stored_or_standing(branch_id, runs, seq, tick, interval)
        if answer is not None:
            return answer
        return _make_and_store(branch, now, seq, runs, weeks, tick)
    finally:
        with contextlib.suppress(shared.Unavailable):  # the claim lapses by itself
            shared.release(branch_id, runs, token)


def _lost_claim(branch: Branch, now, seq, runs: int, weeks: int, tick: float, clock) -> Live:
    """Another reader is making the branch's estimate. The last estimate known here stands:
    the change is pending until the claimer has stored the new one (`pending` gives a moment
    `LOST_CLAIM_RETRY_S` ahead). A branch without any estimate here yet: made here at once,
    never waited for (a reader that blocks, such as the realtime pusher's one thread, would hold
    up every other branch: bench/load_day.py fell from 65 to 30 operations/s with a 2 s wait)."""
    branch_id = branch.id
    with _lock:
        latest = _latest.get((branch_id, runs))
    result = latest[1] if latest is not None else None
    if result is None:
        return _make_and_store(branch, now, seq, runs, weeks, clock())
    with _lock:
        _retry[(branch_id, runs)] = clock() + LOST_CLAIM_RETRY_S
    _ask(branch_id, runs, seq)
    return result


def last_change_at(branch_id: int, seq: int | None) -> datetime | None:
    """When the branch's change `seq` was made (its journal entry); None: no such entry."""
    return db.session.scalar(
        select(JourneyEvent.at).where(JourneyEvent.branch_id == branch_id, JourneyEvent.seq == seq)
    )


def last_estimates(branch: Branch | int, *, runs: int | None = None) -> Live | None:
    """The branch's (or branch id's) latest estimate in this process, whatever change it was
    made for: a cache read, never a run."""
    branch_id = branch if isinstance(branch, int) else branch.id
    with _lock:
        latest = _latest.get((branch_id, _runs(runs)))
    return latest[1] if latest is not None else None


def last_estimates_pending(
    branch_id: int, *, runs: int | None = None, clock=time.monotonic
) -> tuple[Live | None, bool]:
    """The branch's latest estimate in this process (a cache read) and whether it still stands
    for any later change (made less than `EWT_MIN_INTERVAL_S` ago: the estimator may not run
    again yet, so `branch_estimates` would return it too)."""
    with _lock:
        latest = _latest.get((branch_id, _runs(runs)))
    if latest is None:
        return None, False
    interval = _setting("EWT_MIN_INTERVAL_S", DEFAULT_INTERVAL_S)
    return latest[1], clock() - latest[0] < interval


def pending(branch_id: int, *, runs: int | None = None) -> tuple[int, float] | None:
    """Whether a read of the branch was answered with an estimate made for an earlier change
    (the change was *pending*) and no estimate of that change has been made since: (the
    sequence that read asked for, the `time.monotonic()` moment from which a read makes a new
    estimate). None: every read got the estimate of the state it asked about. A cache read."""
    key = (branch_id, _runs(runs))
    with _lock:
        asked = _asked.get(key)
        latest = _latest.get(key)
    if asked is None or latest is None:
        return None
    tick, result = latest
    if result.seq is not None and result.seq >= asked:
        return None
    moment = tick + _setting("EWT_MIN_INTERVAL_S", DEFAULT_INTERVAL_S)
    with _lock:
        retry = _retry.get(key)
    return asked, moment if retry is None else max(moment, retry)


def quote(branch: Branch, service_id) -> Estimate | None:
    """What a ticket of the service issued now is told (`Ticket.quoted_wait_s`, the issue
    answer, the alerts' EWT): the wait of a new ticket in the estimate made for the branch's
    current state, or while a change is pending the last one (`branch_estimates` runs at most
    once per branch per `EWT_MIN_INTERVAL_S`): exactly what the kiosk, the phone and the
    display show at that moment. Callers ask before writing anything of the ticket."""
    return branch_estimates(branch).new_wait(service_id)
