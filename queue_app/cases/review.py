"""The weekly management review (issue 5, "Weekly review"): read-only queries, no request.

`weekly_review(branches, week_start, now=...)` gathers, for one ISO week (Monday..Sunday in
each branch's own time zone), everything the review meeting looks at:

- **Pain areas** as Paretos (top `TOP` groups by count, with each group's share and the
  cumulative share of *all* the week's cases, so the last bar of a top 10 reaches 100 % only
  when there are no more groups). The cases counted are those *opened* in the week. Groupings:
  `cause` (5P root cause and reason code of resolved cases; a case not resolved yet counts as
  `unclassified`), `category` (the 5P root cause alone), `branch` and `service` (by service
  code across branches).
- **The customers' own reasons**: the reason codes chosen in the week's negative responses
  (NPS <= `NEGATIVE_NPS_MAX`, by business day), one count per response and reason, as a
  second Pareto. It is there before any case is resolved.
- **Cases by level and status** (the week's cases, at their current level) and the **open
  backlog by level and age** as of the end of the week, or now while the week is not over
  (`as_of`): cases opened before `as_of` and not resolved at `as_of`, their level at `as_of`
  taken from their escalation steps, in age buckets <24 h, 24-48 h, 48-72 h, >= 72 h.
- **SLA compliance**: of the week's cases, the share whose first contact with the customer
  was logged within `sla_hours` (48) of opening (exactly 48 h is in time). A case without a
  contact that is still open and younger than `sla_hours` at `now` can still make it: it is
  *pending* and left out of the denominator. Every other case counts: a contact after the
  limit, no contact after the limit, or resolved without any contact logged is a breach.
- **Trend**: NPS, CSAT% and CES per ISO week for the `TREND_WEEKS` weeks ending with the
  reviewed one, from the responses' business days, with the formulas of
  `feedback/metrics.py`.
- **Comments** behind the top `COMMENT_REASONS` customer reasons: the latest
  `COMMENTS_PER_REASON` negative responses of the week with that reason and a comment.
"""

from __future__ import annotations

from collections import Counter as Tally_
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, false, func, or_, select

from ..branches.models import Branch, Service, network_day
from ..extensions import db
from ..feedback.metrics import NpsResult, Score, Tally
from ..feedback.models import FeedbackResponse
from .models import Case, CaseStatus, CaseStep, StepKind

TOP = 10
TREND_WEEKS = 8
COMMENT_REASONS = 3
COMMENTS_PER_REASON = 5
NEGATIVE_NPS_MAX = 6
UNCLASSIFIED = "unclassified"
# age buckets of the open backlog: lower bound in hours, key
AGE_BUCKETS = ((0, "lt24"), (24, "24to48"), (48, "48to72"), (72, "ge72"))
DIMENSIONS = ("cause", "category", "branch", "service")
FIRST_YEAR, LAST_YEAR = 2000, 2200  # weeks outside are refused (no date arithmetic overflow)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ParetoRow:
    rank: int
    key: str  # cause: "people:staff_attitude" or "unclassified"; category: "people"; ...
    count: int
    percent: float  # share of the total, 0..100, exact (rounded only when shown)
    cumulative_percent: float  # running share of the total, 0..100


@dataclass(frozen=True)
class Pareto:
    dimension: str  # cause, category, branch, service, reason
    total: int  # everything counted, also beyond the top rows
    rows: list[ParetoRow]
    rest_count: int  # counted in groups beyond the top rows
    rest_groups: int


@dataclass(frozen=True)
class LevelRow:
    level: int
    open: int
    acknowledged: int
    resolved: int

    @property
    def total(self) -> int:
        return self.open + self.acknowledged + self.resolved


@dataclass(frozen=True)
class AgeRow:
    level: int
    buckets: dict[str, int]  # AGE_BUCKETS key -> open cases

    @property
    def total(self) -> int:
        return sum(self.buckets.values())


@dataclass(frozen=True)
class Sla:
    hours: int
    met: int  # first contact within `hours` of opening
    breached: int  # contact later, none by the limit, or resolved without contact
    pending: int  # no contact yet, still open, younger than `hours`: not counted

    @property
    def counted(self) -> int:
        return self.met + self.breached

    @property
    def share(self) -> float | None:
        """Compliance in percent (0..100), None when no case counts."""
        return 100 * self.met / self.counted if self.counted else None


@dataclass(frozen=True)
class TrendWeek:
    week_start: date
    nps: NpsResult
    csat: Score
    ces: Score

    @property
    def label(self) -> str:
        year, week, _ = self.week_start.isocalendar()
        return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class Comment:
    response_id: int
    branch_code: str
    business_day: date
    submitted_at: datetime
    nps: int | None
    csat: int | None
    ces: int | None
    comment: str


@dataclass(frozen=True)
class CommentGroup:
    reason: str
    count: int  # negative responses of the week with this reason
    comments: list[Comment]


@dataclass
class Review:
    week_start: date
    branches: list[Branch]
    now: datetime
    as_of: datetime  # the end of the week, or now while the week is not over
    cases: int  # opened in the week
    paretos: dict[str, Pareto]  # DIMENSIONS -> Pareto of the week's cases
    reasons: Pareto  # the customers' own reasons (negative responses)
    negative_responses: int
    negative_without_reason: int
    levels: list[LevelRow]
    ages: list[AgeRow]
    sla: Sla
    trend: list[TrendWeek]
    comments: list[CommentGroup]
    service_names: dict[str, dict] = field(default_factory=dict)  # code -> {"id": .., "en": ..}
    service_fallback: dict[str, str] = field(default_factory=dict)  # code -> Service.name

    @property
    def week_end(self) -> date:
        """The Sunday of the week (inclusive)."""
        return self.week_start + timedelta(days=6)

    @property
    def label(self) -> str:
        return iso_week_label(self.week_start)


# --- weeks -------------------------------------------------------------------------------


class BadWeek(ValueError):
    pass


def iso_week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def parse_iso_week(text: str) -> date:
    """The Monday of an ISO week written `2026-W48` (or `2026-w48`, `2026W48`), years
    `FIRST_YEAR`..`LAST_YEAR`."""
    value = (text or "").strip().upper().replace("W", "-W").replace("--W", "-W")
    parts = value.split("-W")
    if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        raise BadWeek(text)
    if len(parts[0]) != 4 or not 1 <= len(parts[1]) <= 2:
        raise BadWeek(text)
    if not FIRST_YEAR <= int(parts[0]) <= LAST_YEAR:
        raise BadWeek(text)
    try:
        return date.fromisocalendar(int(parts[0]), int(parts[1]), 1)
    except ValueError as error:
        raise BadWeek(text) from error


def week_of(moment: datetime, branches) -> date:
    """The Monday of the ISO week `moment` falls in, for `branches` (their earliest business
    day, as `network_day`)."""
    local = network_day(branches, moment)
    return local - timedelta(days=local.weekday())


def week_bounds(branch: Branch, week_start: date) -> tuple[datetime, datetime]:
    """Monday 00:00 and the next Monday 00:00 in the branch's zone, in UTC."""
    zone = ZoneInfo(branch.timezone)
    start = datetime.combine(week_start, time.min, tzinfo=zone).astimezone(UTC)
    end = datetime.combine(week_start + timedelta(days=7), time.min, tzinfo=zone).astimezone(UTC)
    return start, end


# --- Pareto ------------------------------------------------------------------------------


def pareto(dimension: str, counts: dict[str, int], *, top: int = TOP) -> Pareto:
    """Groups sorted by count (ties by key), the first `top` kept, each with its share and
    the cumulative share of the total of every group."""
    ordered = sorted(((k, n) for k, n in counts.items() if n > 0), key=lambda kv: (-kv[1], kv[0]))
    total = sum(n for _, n in ordered)
    rows, running = [], 0
    for rank, (key, n) in enumerate(ordered[:top], start=1):
        running += n
        rows.append(ParetoRow(rank, key, n, 100 * n / total, 100 * running / total))
    rest = ordered[top:]
    return Pareto(dimension, total, rows, sum(n for _, n in rest), len(rest))


def _cause_key(c: Case) -> str:
    if c.status != CaseStatus.RESOLVED or c.root_cause is None:
        return UNCLASSIFIED
    return f"{c.root_cause.value}:{c.reason_code or '-'}"


def _category_key(c: Case) -> str:
    if c.status != CaseStatus.RESOLVED or c.root_cause is None:
        return UNCLASSIFIED
    return c.root_cause.value


# --- the review --------------------------------------------------------------------------


def _in_week(column, branches: Sequence[Branch], week_start: date):
    """`column` (a UTC timestamp of a branch's row) inside the week of its branch; one
    condition per time zone, not per branch."""
    by_zone: dict[str, list[Branch]] = defaultdict(list)
    for b in branches:
        by_zone[b.timezone].append(b)
    conditions = []
    for group in by_zone.values():
        start, end = week_bounds(group[0], week_start)
        conditions.append(
            and_(
                Case.branch_id.in_([b.id for b in group]),
                column >= start,
                column < end,
            )
        )
    return or_(*conditions) if conditions else false()


def weekly_review(
    branches: Iterable[Branch],
    week_start: date,
    *,
    now: datetime,
    sla_hours: int = 48,
    top: int = TOP,
) -> Review:
    """Everything the weekly review shows for `branches` and the ISO week starting on the
    Monday `week_start` (see the module's docstring for every rule)."""
    if week_start.weekday() != 0:
        raise BadWeek(str(week_start))
    branches = sorted(branches, key=lambda b: b.code)
    ids = [b.id for b in branches]
    by_id = {b.id: b for b in branches}
    week_end_at = max((week_bounds(b, week_start)[1] for b in branches), default=now)
    as_of = min(now, week_end_at)

    services = list(db.session.scalars(select(Service).where(Service.branch_id.in_(ids))))
    service_code = {s.id: s.code for s in services}
    service_names: dict[str, dict] = {}
    service_fallback: dict[str, str] = {}
    for s in sorted(services, key=lambda s: (by_id[s.branch_id].code, s.position, s.id)):
        service_names.setdefault(s.code, dict(s.names or {}))
        service_fallback.setdefault(s.code, s.name)

    week_cases = list(
        db.session.scalars(
            select(Case)
            .where(_in_week(Case.opened_at, branches, week_start))
            .order_by(Case.opened_at, Case.id)
        )
    )

    counts: dict[str, Tally_] = {d: Tally_() for d in DIMENSIONS}
    for c in week_cases:
        counts["cause"][_cause_key(c)] += 1
        counts["category"][_category_key(c)] += 1
        counts["branch"][by_id[c.branch_id].code] += 1
        counts["service"][service_code.get(c.service_id, str(c.service_id))] += 1
    paretos = {d: pareto(d, counts[d], top=top) for d in DIMENSIONS}

    reasons, negative, without_reason, comments = _customer_reasons(
        branches, week_start, by_id, top=top
    )

    return Review(
        week_start=week_start,
        branches=branches,
        now=now,
        as_of=as_of,
        cases=len(week_cases),
        paretos=paretos,
        reasons=reasons,
        negative_responses=negative,
        negative_without_reason=without_reason,
        levels=_levels(week_cases),
        ages=_backlog(ids, as_of, now),
        sla=_sla(week_cases, now, sla_hours),
        trend=_trend(ids, week_start),
        comments=comments,
        service_names=service_names,
        service_fallback=service_fallback,
    )


def _levels(cases: Sequence[Case]) -> list[LevelRow]:
    table: dict[int, Tally_] = defaultdict(Tally_)
    for c in cases:
        table[c.level][c.status.value] += 1
    return [
        LevelRow(
            level,
            table[level][CaseStatus.OPEN.value],
            table[level][CaseStatus.ACKNOWLEDGED.value],
            table[level][CaseStatus.RESOLVED.value],
        )
        for level in sorted(table)
    ]


def _age_bucket(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    key = AGE_BUCKETS[0][1]
    for low, name in AGE_BUCKETS:
        if hours >= low:
            key = name
    return key


def _backlog(branch_ids: list[int], as_of: datetime, now: datetime) -> list[AgeRow]:
    """Cases open at `as_of` by their level then and their age then."""
    cases = list(
        db.session.scalars(
            select(Case).where(
                Case.branch_id.in_(branch_ids) if branch_ids else false(),
                Case.opened_at < as_of,
                or_(Case.resolved_at.is_(None), Case.resolved_at > as_of),
            )
        )
    )
    levels: dict[int, int] = {c.id: c.level for c in cases}
    if as_of < now and cases:
        # the level a case had at `as_of`: 1, raised by each escalation logged by then
        levels = dict.fromkeys(levels, 1)
        steps = db.session.scalars(
            select(CaseStep).where(
                CaseStep.case_id.in_(list(levels)),
                CaseStep.kind == StepKind.ESCALATED,
                CaseStep.at <= as_of,
            )
        )
        for step in steps:
            reached = (step.data or {}).get("to", step.level)
            if isinstance(reached, int):
                levels[step.case_id] = max(levels[step.case_id], reached)
    table: dict[int, Tally_] = defaultdict(Tally_)
    for c in cases:
        table[levels[c.id]][_age_bucket(as_of - c.opened_at)] += 1
    return [
        AgeRow(level, {key: table[level][key] for _, key in AGE_BUCKETS}) for level in sorted(table)
    ]


def _sla(cases: Sequence[Case], now: datetime, hours: int) -> Sla:
    limit = timedelta(hours=hours)
    met = breached = pending = 0
    for c in cases:
        if c.first_contact_at is not None:
            if c.first_contact_at - c.opened_at <= limit:
                met += 1
            else:
                breached += 1
        elif c.status != CaseStatus.RESOLVED and now - c.opened_at < limit:
            pending += 1
        else:
            breached += 1
    return Sla(hours, met, breached, pending)


def _customer_reasons(
    branches: Sequence[Branch], week_start: date, by_id: dict[int, Branch], *, top: int
) -> tuple[Pareto, int, int, list[CommentGroup]]:
    ids = [b.id for b in branches]
    rows = db.session.execute(
        select(
            FeedbackResponse.id,
            FeedbackResponse.branch_id,
            FeedbackResponse.business_day,
            FeedbackResponse.submitted_at,
            FeedbackResponse.nps,
            FeedbackResponse.csat,
            FeedbackResponse.ces,
            FeedbackResponse.reasons,
            FeedbackResponse.comment,
        ).where(
            FeedbackResponse.branch_id.in_(ids) if ids else false(),
            FeedbackResponse.business_day >= week_start,
            FeedbackResponse.business_day < week_start + timedelta(days=7),
            FeedbackResponse.nps.is_not(None),
            FeedbackResponse.nps <= NEGATIVE_NPS_MAX,
        )
    ).all()
    counts: Tally_ = Tally_()
    without = 0
    for row in rows:
        chosen = {r for r in (row.reasons or []) if isinstance(r, str) and r}
        counts.update(chosen)
        without += not chosen
    result = pareto("reason", counts, top=top)

    groups = []
    latest_first = sorted(rows, key=lambda r: (r.submitted_at, r.id), reverse=True)
    for item in result.rows[:COMMENT_REASONS]:
        picked = [
            Comment(
                r.id,
                by_id[r.branch_id].code,
                r.business_day,
                r.submitted_at,
                r.nps,
                r.csat,
                r.ces,
                r.comment.strip(),
            )
            for r in latest_first
            if item.key in (r.reasons or []) and r.comment and r.comment.strip()
        ]
        groups.append(CommentGroup(item.key, item.count, picked[:COMMENTS_PER_REASON]))
    return result, len(rows), without, groups


def _trend(branch_ids: list[int], week_start: date) -> list[TrendWeek]:
    """NPS, CSAT and CES per ISO week (by business day) for the last `TREND_WEEKS` weeks.
    The database counts answers per group and day; `feedback/metrics.py` does the rest."""
    first = week_start - timedelta(weeks=TREND_WEEKS - 1)
    R = FeedbackResponse

    def count(condition):
        return func.count(case((condition, 1)))

    rows = db.session.execute(
        select(
            R.business_day,
            count(R.nps >= 9),
            count(R.nps.between(7, 8)),
            count(R.nps <= 6),
            count(R.csat.is_not(None)),
            count(R.csat >= 4),
            count(R.ces.is_not(None)),
            count(R.ces >= 4),
            count(R.ces <= 2),
        )
        .where(
            R.branch_id.in_(branch_ids) if branch_ids else false(),
            R.business_day >= first,
            R.business_day < week_start + timedelta(days=7),
        )
        .group_by(R.business_day)
    ).all()
    weeks: dict[date, Tally] = {first + timedelta(weeks=i): Tally() for i in range(TREND_WEEKS)}
    for day, *numbers in rows:
        monday = day - timedelta(days=day.weekday())
        weeks[monday] = weeks[monday] + Tally(*numbers)
    return [TrendWeek(monday, t.nps(), t.csat(), t.ces()) for monday, t in sorted(weeks.items())]
