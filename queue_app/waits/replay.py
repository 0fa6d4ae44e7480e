"""Replay a logged day (the format of DESIGN.md, "Estimated-wait replay format").

`read_visits` and `read_counters` validate the two CSV files (`ReplayInputError` names the file,
line and problem). `replay` walks the tickets in order of arrival and, for each, builds the state
the branch was in at that moment from what had happened strictly up to it, learns service
times, arrival rates and abandonment from the same day so far (with priors), and asks the
estimator; it also computes the baselines from the same knowledge:

- queue length: (tickets of the same service waiting ahead + 1) x mean service time / counters
  open for the service; 0 when one of those counters is idle and nobody waits ahead;
- LES (last to enter service): the wait of the last ticket of the service called before it;
- HOL (head of line): how long the oldest ticket of the service still waiting has waited.

Counter staffing is inferred from the log: a counter is busy from a call to its finish; an idle
counter counts as open until a ticket it serves has waited `away_after_s` while it was idle
(it did not call it: on a break, or not staffed yet, or gone); it comes back with its next call.
A ticket abandoned without a drop time is taken as waiting until a later ticket of its service
is called (when the branch would have called it and found it gone).

`actual_wait_s` is the called time minus arrival for served tickets and empty for abandoned ones;
the evaluation uses the served tickets.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ..routing.policy import Policy
from .estimator import estimate
from .model import (
    BUSY,
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

VISIT_COLUMNS = [
    "ticket_id",
    "service",
    "arrived_at",
    "called_at",
    "finished_at",
    "counter",
    "outcome",
]
COUNTER_COLUMNS = ["counter", "services"]
# What a live branch also records, optional after the columns of the format: the ticket's
# priority class (0 normal, higher is more urgent) and its appointment time; the counter's
# planned absences (breaks, hours before it opens or after it closes) as ISO 8601 intervals
# `start/end` separated by `;`.
OPTIONAL_VISIT_COLUMNS = ["priority", "appointment_at"]
OPTIONAL_COUNTER_COLUMNS = ["absences"]
PRED_COLUMNS = ["ticket_id", "predicted_wait_s", "actual_wait_s"]
OUTCOMES = ("served", "abandoned")


class ReplayInputError(ValueError):
    """A replay file that cannot be used, with the file, line and reason."""


@dataclass(frozen=True)
class Visit:
    ticket_id: str
    service: str
    arrived_at: datetime
    called_at: datetime | None
    finished_at: datetime | None
    counter: str | None
    outcome: str
    priority: int = 0
    appointment_at: datetime | None = None

    @property
    def served(self) -> bool:
        return self.outcome == "served"


@dataclass
class Prediction:
    ticket_id: str
    service: str
    arrived_at: datetime
    predicted_s: float
    actual_s: float | None
    low_s: float = 0.0
    high_s: float = 0.0
    baselines: dict = field(default_factory=dict)


def _timestamp(value: str, where: str, column: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ReplayInputError(
            f"{where}: {column} is not an ISO 8601 date and time: {value!r}"
        ) from None
    if moment.tzinfo is None:
        raise ReplayInputError(f"{where}: {column} has no UTC offset: {value!r}")
    return moment


def _open_csv(path: str, columns: list[str], optional: list[str] | tuple = ()):
    """The open file and its reader past the header, and the header: `columns`, then any of
    `optional` (each once, in any order)."""
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise ReplayInputError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise ReplayInputError(
            f"{path}: empty file, expected the header {','.join(columns)}"
        ) from None
    except UnicodeDecodeError:
        handle.close()
        raise ReplayInputError(f"{path}: not UTF-8") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    extra = header[len(columns) :]
    if (
        header[: len(columns)] != columns
        or any(h not in optional for h in extra)
        or len(set(extra)) != len(extra)
    ):
        handle.close()
        expected = ",".join(columns)
        if optional:
            expected += f" (then optionally {', '.join(optional)})"
        raise ReplayInputError(f"{path}: bad header {','.join(header)!r}, expected {expected!r}")
    return handle, reader, header


def read_counters(path: str) -> dict[str, list[str]]:
    return read_counter_file(path)[0]


def read_counter_file(path: str) -> tuple[dict[str, list[str]], dict[str, list]]:
    """The counters (`{counter: [services in its priority order]}`) and, from the optional
    `absences` column, their planned absences (`{counter: [(start, end), ...]}`, the
    `schedule` of `replay`; empty without the column)."""
    handle, reader, header = _open_csv(path, COUNTER_COLUMNS, OPTIONAL_COUNTER_COLUMNS)
    counters: dict[str, list[str]] = {}
    schedule: dict[str, list] = {}
    with handle:
        try:
            for n, row in enumerate(reader, start=2):
                where = f"{path}:{n}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ReplayInputError(
                        f"{where}: expected {len(header)} fields, found {len(row)}"
                    )
                name, services = row[0].strip(), row[1]
                if not name:
                    raise ReplayInputError(f"{where}: empty counter name")
                if name in counters:
                    raise ReplayInputError(f"{where}: counter {name!r} listed twice")
                codes = [s.strip() for s in services.split(";")]
                if not codes or any(not c for c in codes):
                    raise ReplayInputError(f"{where}: counter {name!r} has an empty service")
                if len(set(codes)) != len(codes):
                    raise ReplayInputError(f"{where}: counter {name!r} lists a service twice")
                counters[name] = codes
                if len(header) > 2 and row[2].strip():
                    schedule[name] = _intervals(row[2], where)
        except UnicodeDecodeError:
            raise ReplayInputError(f"{path}: not UTF-8") from None
    if not counters:
        raise ReplayInputError(f"{path}: no counters")
    return counters, schedule


def _intervals(value: str, where: str) -> list[tuple[datetime, datetime]]:
    """`start/end;start/end` (ISO 8601 with offsets) -> sorted (start, end) pairs."""
    out = []
    for part in value.split(";"):
        part = part.strip()
        start, sep, end = part.partition("/")
        if not sep:
            raise ReplayInputError(f"{where}: absences: {part!r} is not start/end")
        a = _timestamp(start.strip(), where, "absences")
        b = _timestamp(end.strip(), where, "absences")
        if b <= a:
            raise ReplayInputError(f"{where}: absences: {part!r} ends before it starts")
        out.append((a, b))
    return sorted(out)


def read_visits(path: str, counters: dict[str, list[str]] | None = None) -> list[Visit]:
    handle, reader, header = _open_csv(path, VISIT_COLUMNS, OPTIONAL_VISIT_COLUMNS)
    extra = {name: i for i, name in enumerate(header) if name in OPTIONAL_VISIT_COLUMNS}
    visits: list[Visit] = []
    seen: set[str] = set()
    with handle:
        try:
            for n, row in enumerate(reader, start=2):
                where = f"{path}:{n}"
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ReplayInputError(
                        f"{where}: expected {len(header)} fields, found {len(row)}"
                    )
                tid, service, arrived, called, finished, counter, outcome = (
                    c.strip() for c in row[: len(VISIT_COLUMNS)]
                )
                priority, appointment_at = _optional_visit_fields(row, extra, where)
                if not tid:
                    raise ReplayInputError(f"{where}: empty ticket_id")
                if tid in seen:
                    raise ReplayInputError(f"{where}: ticket {tid!r} appears twice")
                seen.add(tid)
                if not service:
                    raise ReplayInputError(f"{where}: empty service")
                if outcome not in OUTCOMES:
                    raise ReplayInputError(
                        f"{where}: outcome must be served or abandoned, not {outcome!r}"
                    )
                arrived_at = _timestamp(arrived, where, "arrived_at")
                called_at = _timestamp(called, where, "called_at") if called else None
                finished_at = _timestamp(finished, where, "finished_at") if finished else None
                if outcome == "served":
                    if called_at is None or finished_at is None:
                        raise ReplayInputError(
                            f"{where}: a served ticket needs called_at and finished_at"
                        )
                    if not counter:
                        raise ReplayInputError(f"{where}: a served ticket needs its counter")
                    if called_at < arrived_at:
                        raise ReplayInputError(f"{where}: called_at is before arrived_at")
                    if finished_at < called_at:
                        raise ReplayInputError(f"{where}: finished_at is before called_at")
                else:
                    if called_at is not None:
                        raise ReplayInputError(f"{where}: an abandoned ticket has no called_at")
                    if finished_at is not None and finished_at < arrived_at:
                        raise ReplayInputError(f"{where}: finished_at is before arrived_at")
                if counter and counters is not None:
                    if counter not in counters:
                        raise ReplayInputError(f"{where}: unknown counter {counter!r}")
                    if service not in counters[counter]:
                        raise ReplayInputError(
                            f"{where}: counter {counter!r} does not serve {service!r} "
                            f"(it serves {';'.join(counters[counter])})"
                        )
                visits.append(
                    Visit(
                        tid,
                        service,
                        arrived_at,
                        called_at,
                        finished_at,
                        counter or None,
                        outcome,
                        priority,
                        appointment_at,
                    )
                )
        except UnicodeDecodeError:
            raise ReplayInputError(f"{path}: not UTF-8") from None
    if not visits:
        raise ReplayInputError(f"{path}: no visits")
    if counters is not None:
        offered = {s for codes in counters.values() for s in codes}
        for v in visits:
            if v.service not in offered:
                raise ReplayInputError(
                    f"{path}: no counter serves {v.service!r} (ticket {v.ticket_id})"
                )
    return visits


def _optional_visit_fields(row: list[str], extra: dict, where: str):
    priority, appointment_at = 0, None
    if "priority" in extra:
        value = row[extra["priority"]].strip()
        if value:
            if not value.isdigit():
                raise ReplayInputError(
                    f"{where}: priority is a whole number (0 normal, higher more urgent), "
                    f"not {value!r}"
                )
            priority = int(value)
    if "appointment_at" in extra:
        value = row[extra["appointment_at"]].strip()
        if value:
            appointment_at = _timestamp(value, where, "appointment_at")
    return priority, appointment_at


def write_predictions(path: str, predictions: list[Prediction]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PRED_COLUMNS)
        for p in predictions:
            actual = "" if p.actual_s is None else f"{p.actual_s:.0f}"
            writer.writerow([p.ticket_id, f"{p.predicted_s:.0f}", actual])


def read_predictions(path: str) -> dict[str, tuple[float, float | None]]:
    handle, reader, _ = _open_csv(path, PRED_COLUMNS)
    out = {}
    with handle:
        for n, row in enumerate(reader, start=2):
            if not row:
                continue
            where = f"{path}:{n}"
            if len(row) != 3:
                raise ReplayInputError(f"{where}: expected 3 fields, found {len(row)}")
            try:
                predicted = float(row[1])
                actual = float(row[2]) if row[2].strip() else None
            except ValueError:
                raise ReplayInputError(f"{where}: not a number of seconds") from None
            out[row[0].strip()] = (predicted, actual)
    return out


@dataclass
class ReplayOptions:
    runs: int = 100
    seed: int = 0
    low_q: float = 0.1
    high_q: float = 0.95
    away_after_s: float = 120.0  # an idle counter that leaves its work waiting this long is away
    break_s: float = 1800.0  # prior of how long an away counter that worked earlier stays away
    overdue_share: float = 0.5  # an away counter past its expected return: back in this share
    residual_floor: float = 0.5  # a ticket in service lasts at least this share of the mean more
    prior_service_s: float = 300.0
    prior_weight: float = 1.0
    rate_window_s: float = 3600.0
    min_rate_window_s: float = 900.0
    horizon_s: float = 4 * 3600.0
    priority_prior_n: float = 10.0
    appointment_early_s: float = float(Policy().appointment_early_s)


def _drop_times(visits: list[Visit]) -> dict[str, datetime | None]:
    """When each abandoned ticket was known to be gone."""
    calls_by_service: dict[str, list[tuple[datetime, datetime]]] = {}
    for v in visits:
        if v.called_at is not None:
            calls_by_service.setdefault(v.service, []).append((v.arrived_at, v.called_at))
    out = {}
    for v in visits:
        if v.served:
            continue
        if v.finished_at is not None:
            out[v.ticket_id] = v.finished_at
            continue
        later = [c for a, c in calls_by_service.get(v.service, ()) if a > v.arrived_at]
        out[v.ticket_id] = min(later) if later else None
    return out


def _gone_at(v: Visit) -> datetime | None:
    if v.outcome == "served":
        return v.called_at
    if v.outcome == "abandoned":
        return v.finished_at
    return None


def state_at(
    known: list[Visit],
    counters: dict[str, list[str]],
    t: datetime,
    opts: ReplayOptions,
    *,
    day_start: datetime | None = None,
    history: list[Visit] | None = None,
    schedule: dict | None = None,
    known_model: WaitModel | None = None,
) -> tuple[BranchState, WaitModel, dict]:
    """The branch state and the learned model at `t` from the log as it stood then (`_known_by`:
    outcome `waiting` for a ticket not called or dropped yet, no finish for one in service).

    `history`: visits of earlier days (complete logs, all before `day_start`): their service
    times join today's, like the live model learns from the last weeks.

    `schedule`: what the live branch knows of its counters' plan, `{counter: [(start, end), ...]}`
    (aware datetimes; breaks, before opening, after closing): a counter takes no new ticket in
    those intervals. A counter inside one is paused until its end; its later ones are its known
    breaks; an absence is only inferred (`away_after_s`) for time outside them.

    `known_model`: a model known beforehand (e.g. the simulator's own, `simulator.true_model`),
    used instead of learning one from the log."""
    day_start = day_start or min(v.arrived_at for v in known)
    if history and max(v.arrived_at for v in history) >= day_start:
        raise ValueError("history must end before the replayed day starts")
    waiting = [v for v in known if _gone_at(v) is None]
    model = known_model or _learned_model(known, counters, t, opts, day_start, history)

    counter_states = []
    open_for: dict[str, int] = {}
    idle_for: dict[str, int] = {}
    away = timedelta(seconds=opts.away_after_s)
    break_s = _learned_break(known, counters, opts)
    for name, codes in counters.items():
        mine = [v for v in known if v.counter == name and v.outcome == "served"]
        busy = [v for v in mine if v.finished_at is None]
        planned = sorted((schedule or {}).get(name, ()))
        ahead = tuple((a, b) for a, b in planned if b > t)
        inside = next(((a, b) for a, b in ahead if a <= t), None)
        if busy:
            v = max(busy, key=lambda v: v.called_at)
            cs = CounterState(
                name,
                tuple(codes),
                BUSY,
                busy_since=v.called_at,
                busy_service=v.service,
                breaks=ahead,
            )
        elif inside is not None:
            end = inside[1]
            later = tuple(p for p in ahead if p != inside)
            cs = CounterState(
                name,
                tuple(codes),
                PAUSED,
                returns_at=end if end - t <= timedelta(seconds=opts.horizon_s) else None,
                breaks=later,
            )
        else:
            done = [v.finished_at for v in mine]
            idle_since = max(done) if done else day_start
            ended = [b for a, b in planned if b <= t]
            if ended:  # back from a planned absence: idle from its end
                idle_since = max(idle_since, max(ended))
            away_since = None
            for v in known:
                if v.service not in codes:
                    continue
                u = max(v.arrived_at, idle_since) + away
                g = _gone_at(v)
                if u <= t and (g is None or g > u):
                    away_since = u if away_since is None else min(away_since, u)
            if away_since is None:
                cs = CounterState(name, tuple(codes), IDLE, breaks=ahead)
            else:
                back = None
                if done:  # it worked earlier today: a break
                    back = away_since + timedelta(seconds=break_s)
                    if back < t + timedelta(seconds=60):
                        back = t + timedelta(seconds=max(60.0, opts.overdue_share * break_s))
                cs = CounterState(name, tuple(codes), PAUSED, returns_at=back, breaks=ahead)
        counter_states.append(cs)
        if cs.status in (BUSY, IDLE):
            for s in codes:
                open_for[s] = open_for.get(s, 0) + 1
                if cs.status == IDLE:
                    idle_for[s] = idle_for.get(s, 0) + 1

    state = BranchState(
        now=t,
        counters=tuple(counter_states),
        waiting=tuple(
            WaitingTicket(
                v.ticket_id,
                v.service,
                v.arrived_at,
                rank=v.priority,
                appointment_due_at=v.appointment_at,
            )
            for v in waiting
        ),
    )
    facts = {"waiting": waiting, "open_for": open_for, "idle_for": idle_for}
    return state, model, facts


def _learned_model(
    known: list[Visit],
    counters: dict[str, list[str]],
    t: datetime,
    opts: ReplayOptions,
    day_start: datetime,
    history: list[Visit] | None,
) -> WaitModel:
    """What the log (and `history`) teaches by `t`: service times, arrival rates of the recent
    window, the give-up hazard and the share of priority arrivals."""
    st = _learned_service_times(known, counters, t, opts, history)
    # arrival rates: the recent window (the arrival at t itself is in the state already)
    window = max(opts.min_rate_window_s, min(opts.rate_window_s, (t - day_start).total_seconds()))
    since = t - timedelta(seconds=window)
    flat: dict[str, float] = {}
    for v in known:
        if since <= v.arrived_at < t:
            flat[v.service] = flat.get(v.service, 0.0) + 3600.0 / window
    # abandonment: drops known by t over the waiting time observed by t
    abandoned, exposure = 0, 0.0
    for v in known:
        g = _gone_at(v)
        end = t if g is None else g
        exposure += max(0.0, (end - v.arrived_at).total_seconds())
        if v.outcome == "abandoned":
            abandoned += 1
    model = WaitModel(st, ArrivalRates(flat=flat), Abandonment.from_counts(abandoned, exposure))
    model.arrivals.priority_share = _priority_shares(list(history or ()) + list(known), opts)
    return model


def _learned_service_times(
    known: list[Visit],
    counters: dict[str, list[str]],
    t: datetime,
    opts: ReplayOptions,
    history: list[Visit] | None,
) -> ServiceTimes:
    """Service times of today's log so far and of `history`, with the pooled mean as prior."""
    # service times, with a prior from the pooled mean of the day so far
    durations: dict[str, list[float]] = {}
    for v in list(history or ()) + list(known):
        if v.outcome == "served" and v.finished_at is not None:
            durations.setdefault(v.service, []).append(
                (v.finished_at - v.called_at).total_seconds()
            )
    pooled = [d for ds in durations.values() for d in ds]
    prior = (sum(pooled) + opts.prior_service_s * opts.prior_weight) / (
        len(pooled) + opts.prior_weight
    )
    services = sorted(
        {s for codes in counters.values() for s in codes} | {v.service for v in known}
    )
    st = ServiceTimes(
        dict.fromkeys(services, prior), default_s=prior, prior_weight=opts.prior_weight
    )
    for s, ds in durations.items():
        for d in ds:
            st.add(s, d)
    # tickets still in service have lasted at least this long: without them the long services
    # of the day so far would be missing from the learned distribution
    imputed = []
    for v in known:
        if v.outcome == "served" and v.finished_at is None:
            elapsed = (t - v.called_at).total_seconds()
            mean = st.mean(v.service)
            imputed.append((v.service, elapsed + max(opts.residual_floor * mean, mean - elapsed)))
    for s, d in imputed:
        st.add(s, d)
    return st


def _priority_shares(visits: list[Visit], opts: ReplayOptions) -> dict[str, float]:
    """Per service, the share of arrivals in a higher priority class (the optional `priority`
    column; none without it), with `priority_prior_n` normal arrivals as the prior."""
    arrived: dict[str, int] = {}
    urgent: dict[str, int] = {}
    for v in visits:
        arrived[v.service] = arrived.get(v.service, 0) + 1
        if v.priority > 0:
            urgent[v.service] = urgent.get(v.service, 0) + 1
    return {s: n / (arrived[s] + opts.priority_prior_n) for s, n in urgent.items()}


def _learned_break(known: list[Visit], counters: dict, opts: ReplayOptions) -> float:
    """The mean length of today's absences so far (a counter idle while its work waited, until
    its next call), with the prior `break_s` as one observation."""
    total, n = opts.break_s, 1
    away = timedelta(seconds=opts.away_after_s)
    for name, codes in counters.items():
        mine = sorted(
            (v for v in known if v.counter == name and v.outcome == "served"),
            key=lambda v: v.called_at,
        )
        for prev, nxt in itertools.pairwise(mine):
            if prev.finished_at is None:
                continue
            gap = (nxt.called_at - prev.finished_at).total_seconds()
            if gap <= 300:
                continue
            start = None
            for v in known:
                if v.service in codes:
                    u = max(v.arrived_at, prev.finished_at) + away
                    g = _gone_at(v)
                    if u < nxt.called_at and (g is None or g > u):
                        start = u if start is None else min(start, u)
            if start is not None:
                total += (nxt.called_at - start).total_seconds() + opts.away_after_s
                n += 1
    return total / n


def baselines(
    visit: Visit, visits, state_facts, model: WaitModel, t: datetime, opts: ReplayOptions
) -> dict:
    s = visit.service
    early = timedelta(seconds=opts.appointment_early_s)

    def place(v: Visit):  # the order of the queue as far as the log says: due appointments,
        # then the priority classes, then arrival
        due = v.appointment_at is not None and v.appointment_at - early <= t
        return (not due, -v.priority, v.arrived_at, v.ticket_id)

    mine = place(visit)
    ahead = [
        v
        for v in state_facts["waiting"]
        if v.service == s and v.ticket_id != visit.ticket_id and place(v) < mine
    ]
    mean = model.service_times.mean(s)
    open_n = state_facts["open_for"].get(s, 0)
    if not ahead and state_facts["idle_for"].get(s, 0) > 0:
        ql = 0.0
    else:
        ql = (len(ahead) + 1) * mean / max(1, open_n)
    called = [v for v in visits if v.service == s and v.outcome == "served"]
    les = 0.0
    if called:
        last = max(called, key=lambda v: (v.called_at, v.arrived_at))
        les = (last.called_at - last.arrived_at).total_seconds()
    hol = 0.0
    if ahead:
        hol = (t - min(v.arrived_at for v in ahead)).total_seconds()
    return {"queue_length": ql, "les": les, "hol": hol}


def replay(
    visits: list[Visit],
    counters: dict[str, list[str]],
    opts: ReplayOptions | None = None,
    *,
    with_estimator: bool = True,
    history: list[Visit] | None = None,
    schedule: dict | None = None,
    known_model: WaitModel | None = None,
):
    """Predictions for every ticket, in order of arrival, each from what was known at arrival
    (`with_estimator=False`: the baselines only, `predicted_s` NaN). `history`: complete logs of
    earlier days, `schedule`: the counters' known plan, `known_model`: a model known
    beforehand (see `state_at`)."""
    opts = opts or ReplayOptions()
    visits = sorted(visits, key=lambda v: (v.arrived_at, v.ticket_id))
    drops = _drop_times(visits)
    day_start = visits[0].arrived_at
    out = []
    for v in visits:
        t = v.arrived_at
        known = _known_by(visits, drops, t, v)
        state, model, facts = state_at(
            known,
            counters,
            t,
            opts,
            day_start=day_start,
            history=history,
            schedule=schedule,
            known_model=known_model,
        )
        if not with_estimator:
            out.append(
                Prediction(
                    ticket_id=v.ticket_id,
                    service=v.service,
                    arrived_at=t,
                    predicted_s=math.nan,
                    actual_s=(v.called_at - v.arrived_at).total_seconds() if v.served else None,
                    baselines=baselines(v, known, facts, model, t, opts),
                )
            )
            continue
        est = estimate(
            state,
            model,
            runs=opts.runs,
            seed=opts.seed,
            low_q=opts.low_q,
            high_q=opts.high_q,
            horizon_s=opts.horizon_s,
            with_new=False,
        ).tickets[v.ticket_id]
        actual = (v.called_at - v.arrived_at).total_seconds() if v.served else None
        out.append(
            Prediction(
                ticket_id=v.ticket_id,
                service=v.service,
                arrived_at=t,
                predicted_s=est.mean_s,
                actual_s=actual,
                low_s=est.low_s,
                high_s=est.high_s,
                baselines=baselines(v, known, facts, model, t, opts),
            )
        )
    return out


def _known_by(visits: list[Visit], drops: dict, t: datetime, current: Visit) -> list[Visit]:
    """The log as it stood at `t`: later arrivals removed, calls, finishes and drops after `t`
    blanked, so nothing that happened later can reach the estimate."""
    known = []
    for v in visits:
        if v.arrived_at > t or (
            v.arrived_at == t and v is not current and v.ticket_id > current.ticket_id
        ):
            continue
        called = v.called_at if v.called_at is not None and v.called_at < t else None
        finished = v.finished_at if v.finished_at is not None and v.finished_at < t else None
        waiting = replace(v, called_at=None, finished_at=None, counter=None, outcome="waiting")
        if v.served:
            if called is None:
                known.append(waiting)
            else:
                known.append(replace(v, called_at=called, finished_at=finished))
        else:
            drop = drops.get(v.ticket_id)
            if drop is not None and drop < t:
                known.append(replace(waiting, finished_at=drop, outcome="abandoned"))
            else:
                known.append(waiting)
    return known


def rounded(seconds: float) -> float:
    return float(math.floor(seconds + 0.5))
