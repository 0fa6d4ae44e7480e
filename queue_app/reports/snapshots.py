"""The stored figures of the reports of closed periods (`report_snapshots`).

A report is worked out from its tickets (`queries.compute`), so its cost follows the tickets
of its period: a month of a busy branch is tens of thousands of rows. But a *closed* period
never changes: every business day of it is before the current business day of each of its
branches (`Branch.business_day(now)`), and none of its tickets is still active (the
end-of-day job, `tickets.services.close_past_business_days`, cancels or finishes what was
left) - a final ticket never changes again. So the report of a closed period is worked out
once and its figures stored; later reads are one row by its unique key.

The key (sha256) names the report - the sorted branch ids, the period, its first day, the
service or none - and what its figures depend on besides the tickets: the services' target
waits (the "within target" share), the branches' time zones (the heat map's local hours)
and the payload's format (`FORMAT` and the `Summary` fields). When a target changes the key
changes, the next read works the report out again and stores it under the new key; the old
row is never read again.

The payload is the figures only, as JSON: the total, the series, the summary of every
branch, service, counter and staff member keyed by id (`null`: not recorded), the heat map.
Summaries are lists in `SUMMARY_FIELDS` order; a float goes through JSON as its shortest
repr, so it comes back as the same float, and `deserialize` gives a report equal, field for
field, to the one worked out live. The objects the report names are read at read time
(`queries.items_of`), so a renamed counter shows its new name.

Writing: `store` inserts with ON CONFLICT DO NOTHING (PostgreSQL and SQLite), in a
savepoint of the caller's transaction, so two writers of one key at once both succeed and
leave one row, and a failure to store is logged and undoes only the insert. Like every
service it leaves the commit to the boundary: the report views and the API commit after the
report is read (the first read of a closed period pays, later ones read the row), the job
commits per branch (`reports/jobs.py`), and `flask --app queue_app reports snapshot` after
a history import.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from ..branches.models import Branch, Service
from ..extensions import db
from ..tickets.models import ACTIVE_STATUSES, Ticket
from . import queries
from .models import ReportSnapshot
from .stats import SUMMARY_FIELDS, Summary

log = logging.getLogger(__name__)

# the version of the payload's layout: a change of it (or of the Summary fields) is a new key
FORMAT = 1


# --- the payload -----------------------------------------------------------------------------


def _summary_out(summary: Summary) -> list:
    return [getattr(summary, name) for name in SUMMARY_FIELDS]


def _summary_in(values: Sequence) -> Summary:
    if len(values) != len(SUMMARY_FIELDS):
        raise ValueError("a summary of another format")
    return Summary(*values)


def serialize(report: queries.Report) -> dict:
    """The figures of `report` as JSON-ready data (no ORM objects)."""
    hourly = report.period == "day"
    return {
        "format": FORMAT,
        "period": report.period,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "total": _summary_out(report.total),
        "series": [
            [p.key if hourly else p.key.isoformat(), _summary_out(p.summary)] for p in report.series
        ],
        "groups": {
            dim: [[g.key, _summary_out(g.summary)] for g in report.groups[dim]]
            for dim in queries.DIMENSIONS
        },
        "heat": [[[c.arrivals, c.wait_mean_s] for c in day] for day in report.heat],
    }


def staff_ids(payload: dict) -> set[int]:
    """The staff members a payload names (their objects are read at read time)."""
    return {key for key, _ in payload["groups"]["staff"] if key is not None}


def deserialize(
    payload: dict, branches: Sequence[Branch], items: dict[str, dict[int, Any]]
) -> queries.Report:
    """The report of a payload of `serialize`, naming the objects of `items`
    (`queries.items_of`). ValueError for a payload of another format."""
    if payload.get("format") != FORMAT:
        raise ValueError("a payload of another format")
    period = payload["period"]
    hourly = period == "day"
    by_key = {
        (key if hourly else date.fromisoformat(key)): _summary_in(values)
        for key, values in payload["series"]
    }
    dims = {
        dim: {key: _summary_in(values) for key, values in payload["groups"][dim]}
        for dim in queries.DIMENSIONS
    }
    heat = [
        [queries.HeatCell(wd, h, arrivals, mean) for h, (arrivals, mean) in enumerate(day)]
        for wd, day in enumerate(payload["heat"])
    ]
    if len(heat) != 7 or any(len(day) != 24 for day in heat):
        raise ValueError("a heat map of another shape")
    return queries.assemble(
        period,
        date.fromisoformat(payload["start"]),
        date.fromisoformat(payload["end"]),
        branches,
        _summary_in(payload["total"]),
        by_key,
        dims,
        heat,
        items,
    )


# --- closed periods and keys -----------------------------------------------------------------


def past(branches: Sequence[Branch], end: date, now: datetime) -> bool:
    """Every business day up to `end` is before the current business day of each branch."""
    return bool(branches) and all(end < b.business_day(now) for b in branches)


def settled(branches: Sequence[Branch], start: date, end: date) -> bool:
    """No ticket of the branches on business days start..end is still active (an EXISTS on
    the index `ix_tickets_queue (branch_id, status, ...)`: active tickets are few)."""
    active = exists().where(
        Ticket.branch_id.in_([b.id for b in branches]),
        Ticket.status.in_(ACTIVE_STATUSES),
        Ticket.business_day.between(start, end),
    )
    return not db.session.scalar(select(active))


def closed(branches: Sequence[Branch], period: str, start: date, end: date, now: datetime) -> bool:
    """The period start..end of `branches` is closed: its report can no longer change."""
    if (start, end) != queries.period_range(period, start):
        raise ValueError("start..end is not a whole period")
    return past(branches, end, now) and settled(branches, start, end)


def settings_fingerprint(branches: Sequence[Branch]) -> list:
    """What the figures depend on besides the tickets: the target wait of every service of
    the branches and the branches' time zones."""
    ids = sorted(b.id for b in branches)
    targets = db.session.execute(
        select(Service.id, Service.target_wait_s)
        .where(Service.branch_id.in_(ids))
        .order_by(Service.id)
    ).all()
    zones = sorted((b.id, b.timezone) for b in branches)
    return [[list(t) for t in targets], [list(z) for z in zones]]


def key_of(
    branches: Sequence[Branch], period: str, start: date, service_id: int | None = None
) -> str:
    """The key of the report of `branches` for the period starting on `start` (one query:
    the services' targets)."""
    name = [
        FORMAT,
        list(SUMMARY_FIELDS),
        sorted(b.id for b in branches),
        period,
        start.isoformat(),
        service_id,
        settings_fingerprint(branches),
    ]
    text = json.dumps(name, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --- reading and writing ---------------------------------------------------------------------


def stored_report(key: str, branches: Sequence[Branch]) -> queries.Report | None:
    """The stored report of `key`, or None. A payload that can no longer be read (of
    another format) is logged and treated as missing."""
    payload = db.session.scalar(select(ReportSnapshot.payload).where(ReportSnapshot.key == key))
    if payload is None:
        return None
    try:
        items = queries.items_of(branches, staff_ids(payload))
        return deserialize(payload, branches, items)
    except (KeyError, TypeError, ValueError):
        log.warning("report snapshot %s cannot be read; working the report out", key)
        return None


def store(report: queries.Report, key: str, *, service_id: int | None, now: datetime) -> bool:
    """Store the figures of `report` (of a closed period) under `key`; True when this call
    wrote the row, False when it was there already or the write failed (logged: the report
    is still good, the next read works it out again). Flushes, in a savepoint; the caller
    commits."""
    try:
        values = {
            "key": key,
            "period": report.period,
            "start_day": report.start,
            "end_day": report.end,
            "branch_ids": sorted(b.id for b in report.branches),
            "service_id": service_id,
            "payload": serialize(report),
            "computed_at": now,
        }
        dialect = db.session.get_bind(ReportSnapshot.__mapper__).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(ReportSnapshot)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[ReportSnapshot.key])
            .returning(ReportSnapshot.id)
        )
        with db.session.begin_nested():  # a failure undoes only this insert
            written = db.session.execute(statement).scalar() is not None
        return written
    except Exception:
        log.warning("storing report snapshot %s failed", key, exc_info=True)
        return False


# --- the job ---------------------------------------------------------------------------------


def last_closed_day(period: str, today: date) -> date:
    """A day of the latest day / week / month that ended before `today`."""
    if period == "day":
        return today - timedelta(days=1)
    start, _ = queries.period_range(period, today)
    return start - timedelta(days=1)


def snapshot_branch(branch: Branch, *, now: datetime) -> int:
    """Store the report of the day, the week and the month of `branch` that closed last,
    when they are closed and not stored yet (idempotent); the reports stored. Flushes."""
    today = branch.business_day(now)
    written = 0
    for period in queries.PERIODS:
        start, end = queries.period_range(period, last_closed_day(period, today))
        key = key_of([branch], period, start)
        there = db.session.scalar(select(ReportSnapshot.id).where(ReportSnapshot.key == key))
        if there is not None or not closed([branch], period, start, end, now):
            continue
        made = queries.compute([branch], period, start)
        written += store(made, key, service_id=None, now=now)
    return written


def delete_all() -> int:
    """Forget every stored report (after a history import: `reports snapshot --rebuild`);
    the rows deleted. Flushes."""
    return db.session.execute(delete(ReportSnapshot)).rowcount
