"""The figures of a report worked out inside PostgreSQL: one statement, no ticket rows fetched.

`queries.compute` (behind `queries.report`) takes this path on PostgreSQL (SQLite keeps the
Python path, `queries.build` over fetched rows). It gives the same `Report`, figure for
figure, because it does the same arithmetic on the same values:

- a wait or service time is the difference of two timestamps in seconds rounded once from
  the exact microseconds to a float8, as `timedelta.total_seconds()` rounds them
  (`date_part('epoch', ...)` of an interval under a day divides its microseconds by 1e6 in
  float8; a longer one goes through the exact numeric of `extract`);
- a mean is the sum of the values added up one by one in ascending order (a `sum` over the
  unnested sorted array, in the array's order), as Python's `sum` over the sorted list
  does, divided by their number in Python;
- a percentile reads only the two ranks `stats.percentile_at` interpolates between, rank
  `(n - 1) * p // 100` and the next (integer arithmetic, the same in SQL and in Python), as
  subscripts of the sorted values (`array_agg(w ORDER BY w)[...]`); the interpolation itself
  is `stats.percentile_at`. (`percentile_cont(0.9)` would not do: it multiplies by the float
  0.9, and `(n - 1) * 0.9` is not `(n - 1) * 90 / 100` for a fifth of all n: 4 million of
  the first 20 million differ in the last bit.)
- counts and rates: `count(*) FILTER (...)` with the definitions of `stats.py`, the shares
  divided in Python by `stats.make_summary`.

One statement: the report's tickets are read once (the index range `branch_id = ANY(...)
AND business_day BETWEEN ...`) into a materialized CTE, grouped by GROUPING SETS (the total,
the series: business day, or local hour for a day report; branch, service, counter, staff
member), and, in a second branch of a UNION ALL with only the count and the wait sum, by the
hour of the week (local weekday and hour of issue in the branch's zone, `branches.timezone`).
tests/test_reports_sql.py compares this path with the Python one, float for float.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text

from ..branches.models import Branch
from ..extensions import db
from ..tickets.models import ACTIVE_STATUSES
from . import queries
from .stats import Summary, make_summary

PERCENTILES = (50, 90)
_ACTIVE = ", ".join(f"'{s.value}'" for s in ACTIVE_STATUSES)

# the key columns of the groups, in the order of the rows' columns
_KEYS = ("business_day", "branch_id", "service_id", "counter_id", "staff_id", "wd", "hr")
_SETS = {
    "total": (),
    "day": ("business_day",),
    "hour": ("hr",),  # the series of a day report: the local hour of issue
    "branch": ("branch_id",),
    "service": ("service_id",),
    "counter": ("counter_id",),
    "staff": ("staff_id",),
    "heat": ("wd", "hr"),
}


def _sets(hourly: bool) -> list[str]:
    """The grouping sets of the main part of the statement (the heat map has its own)."""
    return ["total", "hour" if hourly else "day", "branch", "service", "counter", "staff"]


HEAT = -1  # the `g` of the heat map's rows


def _grouped(hourly: bool) -> list[str]:
    """The key columns some set groups by, in `_KEYS` order: GROUPING(...) takes only those."""
    used = {k for name in _sets(hourly) for k in _SETS[name]}
    return [k for k in _KEYS if k in used]


def _mask(hourly: bool, name: str) -> int:
    """GROUPING(...) of a set: a bit set for every key column it does *not* group by."""
    keys = _grouped(hourly)
    return sum(1 << (len(keys) - 1 - i) for i, k in enumerate(keys) if k not in _SETS[name])


def _sorted(column: str) -> str:
    """The column's values of the group in ascending order, as an array."""
    return f"(array_agg({column} ORDER BY {column}) FILTER (WHERE {column} IS NOT NULL))"


def _sorted_sum(column: str) -> str:
    """The values added up one by one in ascending order: a sum over the sorted array (the
    same aggregate as the ranks', so the group is sorted once), in the array's order."""
    # bandit B608: `column` is one of this module's own column names, never input
    return f"(SELECT sum(v) FROM unnest({_sorted(column)}) AS v)"  # nosec B608


def _ranks(column: str) -> str:
    """The values at the ranks `stats.percentile_at` reads, for each percentile: 1-based
    subscripts f + 1 and f + 2 of the sorted values, f = (n - 1) * p / 100 in integers (a
    subscript past the end is NULL and never read)."""
    arr = _sorted(column)
    n = f"count({column})"
    out = []
    for p in PERCENTILES:
        f = f"(({n} - 1) * {p}) / 100"
        out.append(f"{arr}[{f} + 1]")
        out.append(f"{arr}[{f} + 2]")
    return ", ".join(out)


def _seconds(interval: str) -> str:
    """An interval in seconds as a float8 rounded once from the exact microseconds, as
    `timedelta.total_seconds()` gives it: `date_part` divides the microseconds by 1e6 in
    float8 (exact operands, one rounding) when the interval has no days, which is nearly
    always; a longer one takes the exact numeric of `extract` (slower)."""
    return (
        f"CASE WHEN {interval} > interval '-24 hours' AND {interval} < interval '24 hours'"
        f" THEN date_part('epoch', {interval})"
        f" ELSE CAST(extract(epoch FROM {interval}) AS float8) END"
    )


def _statement(hourly: bool, by_service: bool) -> str:
    grouping = ", ".join("(" + ", ".join(_SETS[name]) + ")" for name in _sets(hourly))
    grouped = _grouped(hourly)
    columns = ", ".join(k if k in grouped else f"NULL AS {k}" for k in _KEYS)
    heat_columns = ", ".join(k if k in ("wd", "hr") else f"NULL AS {k}" for k in _KEYS)
    # bandit B608: built from this module's constants and two booleans; values are parameters
    return f"""
WITH r AS MATERIALIZED (
  SELECT business_day, branch_id, service_id, counter_id, staff_id, status, target,
         extract(isodow FROM local)::int - 1 AS wd, extract(hour FROM local)::int AS hr,
         {_seconds("dw")} AS w,
         CASE WHEN status = 'finished' THEN {_seconds("ds")} END AS s
  FROM (
    SELECT t.business_day, t.branch_id, t.service_id, t.counter_id, t.staff_id, t.status,
           coalesce(svc.target_wait_s, 0) AS target,
           t.issued_at AT TIME ZONE b.timezone AS local,
           t.called_at - t.issued_at AS dw, t.finished_at - t.started_at AS ds
    FROM tickets t
    JOIN branches b ON b.id = t.branch_id
    LEFT JOIN services svc ON svc.id = t.service_id
    WHERE t.branch_id = ANY(:ids) AND t.business_day BETWEEN :start AND :end
    {"AND t.service_id = :service_id" if by_service else ""}
    OFFSET 0
  ) AS x
)
SELECT GROUPING({", ".join(grouped)}) AS g, {columns},
       count(*) AS issued,
       count(*) FILTER (WHERE status = 'finished') AS served,
       count(*) FILTER (WHERE status = 'cancelled' AND w IS NULL) AS abandoned,
       count(*) FILTER (WHERE status = 'no_show') AS no_show,
       count(*) FILTER (WHERE status = 'transferred') AS transferred,
       count(*) FILTER (WHERE status IN ({_ACTIVE})) AS active,
       count(*) FILTER (WHERE w <= target) AS within,
       count(w), {_sorted_sum("w")}, {_ranks("w")},
       count(s), {_sorted_sum("s")}, {_ranks("s")}
FROM r
GROUP BY GROUPING SETS ({grouping})
UNION ALL
SELECT {HEAT}, {heat_columns}, count(*), {", ".join(["NULL"] * 6)},
       count(w), sum(w ORDER BY w), {", ".join(["NULL"] * 10)}
FROM r
GROUP BY wd, hr
"""  # nosec B608


def _values(n: int, ranks: Sequence[Any]):
    """`value_at` for `stats.percentile_at` from the fetched ranks of each percentile."""
    at: dict[int, float] = {}
    for i, p in enumerate(PERCENTILES):
        f = (n - 1) * p // 100
        for rank, value in ((f, ranks[2 * i]), (f + 1, ranks[2 * i + 1])):
            if value is not None:
                at[rank] = value
    return at.__getitem__


# a row: GROUPING(...), the key columns (_KEYS), then the counts from `issued`
_COUNTS = 1 + len(_KEYS)
_COLUMN = {k: 1 + i for i, k in enumerate(_KEYS)}


def _summary(row) -> Summary:
    counts = row[_COUNTS : _COUNTS + 7]
    wait_n, wait_sum, *wait_ranks = row[_COUNTS + 7 : _COUNTS + 13]
    service_n, service_sum, *service_ranks = row[_COUNTS + 13 : _COUNTS + 19]
    return make_summary(
        counts,
        (wait_n, wait_sum, _values(wait_n, wait_ranks)),
        (service_n, service_sum, _values(service_n, service_ranks)),
    )


def report(
    branches: Sequence[Branch], period: str, day: date, *, service_id: int | None = None
) -> queries.Report:
    """`queries.report`, with the figures worked out by PostgreSQL."""
    start, end = queries.period_range(period, day)
    hourly = period == "day"
    params: dict[str, Any] = {"ids": [b.id for b in branches], "start": start, "end": end}
    if service_id is not None:
        params["service_id"] = service_id
    rows = (
        db.session.connection()
        .execute(text(_statement(hourly, service_id is not None)), params)
        .all()
        if branches
        else []
    )
    total = queries.Tally().summary()
    by_key: dict[Any, Summary] = {}
    dims: dict[str, dict[int | None, Summary]] = {d: {} for d in queries.DIMENSIONS}
    heat_cells: dict[tuple[int, int], tuple[int, float | None]] = {}
    masks = {name: _mask(hourly, name) for name in _sets(hourly)}
    masks["heat"] = HEAT
    series = masks["hour" if hourly else "day"]
    dimensions = {masks[dim]: dim for dim in queries.DIMENSIONS}
    day, hour, weekday = _COLUMN["business_day"], _COLUMN["hr"], _COLUMN["wd"]
    for row in rows:
        g = row[0]
        if g == masks["heat"]:
            wait_n, wait_sum = row[_COUNTS + 7], row[_COUNTS + 8]
            mean = wait_sum / wait_n if wait_n else None
            heat_cells[(row[weekday], row[hour])] = (row[_COUNTS], mean)
        elif g == masks["total"]:
            total = _summary(row)
        elif g == series:
            by_key[row[hour] if hourly else row[day]] = _summary(row)
        else:
            dim = dimensions[g]
            dims[dim][row[_COLUMN[dim + "_id"]]] = _summary(row)
    heat = [
        [queries.HeatCell(wd, h, *heat_cells.get((wd, h), (0, None))) for h in range(24)]
        for wd in range(7)
    ]
    staff_ids = {k for k in dims["staff"] if k is not None}
    return queries.assemble(
        period,
        start,
        end,
        branches,
        total,
        by_key,
        dims,
        heat,
        queries.items_of(branches, staff_ids),
    )
