"""CSV exports of visits, feedback and cases, streamed row by row.

Format (stable: a column is only ever added at the end):

- UTF-8 without a byte-order mark, comma separated, CRLF line ends, `"` quoting where needed
  (Python's `csv` "excel" dialect), one header row of the column names below;
- times ISO-8601 in UTC with a `Z` (`2026-12-03T08:15:02Z`, microseconds when stored), days
  `YYYY-MM-DD`, durations in whole seconds, lists joined with `;`, booleans `true`/`false`,
  empty for nothing;
- rows in a stable order (business day, then id; cases: opening time, then id).

Personal data: none. The privacy rules (`customers/privacy.py`, context `report`: "nobody
sees personal data in reports and exports") leave out the customer's name, phone number,
e-mail address and id, and every free text that may hold them (ticket notes, handover notes,
feedback comments, case actions): `customer_known` and `has_comment` say whether there was
one. Visits, feedback and cases join on `visit_id`, `ticket_id` and `response_id`.

The rows are read with `yield_per` (a server-side cursor on PostgreSQL) and written in chunks,
so an export of millions of rows holds a few hundred in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import aliased

from ..branches.models import Branch, Counter, Service
from ..cases.models import Case
from ..extensions import db
from ..feedback.models import FeedbackResponse
from ..tickets.models import Ticket, Visit

CHUNK_ROWS = 500
YIELD_PER = 1000

VISIT_COLUMNS = (
    "visit_id",
    "ticket_id",
    "step",
    "previous_ticket_id",
    "branch",
    "service",
    "business_day",
    "number",
    "priority",
    "source",
    "status",
    "issued_at",
    "appointment_due_at",
    "called_at",
    "last_called_at",
    "started_at",
    "finished_at",
    "wait_s",
    "service_s",
    "quoted_wait_s",
    "recall_count",
    "counter_id",
    "counter",
    "staff_id",
    "outcome",
    "customer_known",
)
FEEDBACK_COLUMNS = (
    "response_id",
    "ticket_id",
    "visit_id",
    "branch",
    "service",
    "counter_id",
    "staff_id",
    "channel",
    "locale",
    "submitted_at",
    "business_day",
    "nps",
    "csat",
    "ces",
    "reasons",
    "has_comment",
    "wait_s",
    "quoted_wait_s",
    "service_s",
    "transfers",
)
CASE_COLUMNS = (
    "case_id",
    "response_id",
    "ticket_id",
    "branch",
    "service",
    "level",
    "status",
    "owner_id",
    "department",
    "triggers",
    "opened_at",
    "due_at",
    "first_contact_at",
    "resolved_at",
    "root_cause",
    "reason_code",
    "recovery_nps",
)


def cell(value) -> str:
    """One value as the export writes it (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    value = getattr(value, "value", value)  # enums
    return str(value)


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds())


def encode(columns: Sequence[str], rows: Iterable[Sequence]) -> Iterator[bytes]:
    """The header, then the rows in chunks of `CHUNK_ROWS`, as UTF-8 bytes."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    yield out.getvalue().encode("utf-8")  # the header at once, before the first row is read
    out.seek(0)
    out.truncate()
    for count, row in enumerate(rows, start=1):
        writer.writerow([cell(v) for v in row])
        if count % CHUNK_ROWS == 0:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    tail = out.getvalue()
    if tail:
        yield tail.encode("utf-8")


def _branch_filter(column, branch_ids: Sequence[int] | None) -> list:
    return [] if branch_ids is None else [column.in_(list(branch_ids))]


def _stream(stmt):
    return db.session.execute(stmt.execution_options(yield_per=YIELD_PER))


def visit_rows(start: date, end: date, branch_ids: Sequence[int] | None) -> Iterator[tuple]:
    """One row per visit step (ticket) of the business days `start`..`end` (inclusive)."""
    stmt = (
        select(
            Ticket.visit_id,
            Ticket.id,
            Ticket.step,
            Ticket.previous_id,
            Branch.code,
            Service.code,
            Ticket.business_day,
            Ticket.number,
            Ticket.priority,
            Ticket.source,
            Ticket.status,
            Ticket.issued_at,
            Ticket.appointment_due_at,
            Ticket.called_at,
            Ticket.last_called_at,
            Ticket.started_at,
            Ticket.finished_at,
            Ticket.quoted_wait_s,
            Ticket.recall_count,
            Ticket.counter_id,
            Counter.name,
            Ticket.staff_id,
            Ticket.outcome_code,
            Visit.customer_id.is_not(None),
        )
        .join(Branch, Branch.id == Ticket.branch_id)
        .join(Service, Service.id == Ticket.service_id)
        .join(Visit, Visit.id == Ticket.visit_id)
        .outerjoin(Counter, Counter.id == Ticket.counter_id)
        .where(
            Ticket.business_day >= start,
            Ticket.business_day <= end,
            *_branch_filter(Ticket.branch_id, branch_ids),
        )
        .order_by(Ticket.business_day, Ticket.id)
    )
    for r in _stream(stmt):
        row = list(r)
        issued, called, started, finished = row[11], row[13], row[15], row[16]
        # wait: first call - issue; service: finish - start (as the reports count them)
        yield (
            *row[:17],
            _seconds(issued, called),
            _seconds(started, finished),
            *row[17:-1],
            bool(row[-1]),
        )


def feedback_rows(start: date, end: date, branch_ids: Sequence[int] | None) -> Iterator[tuple]:
    """One row per feedback response of the business days `start`..`end` (inclusive)."""
    service = aliased(Service)
    stmt = (
        select(
            FeedbackResponse.id,
            FeedbackResponse.ticket_id,
            FeedbackResponse.visit_id,
            Branch.code,
            service.code,
            FeedbackResponse.counter_id,
            FeedbackResponse.staff_id,
            FeedbackResponse.channel,
            FeedbackResponse.locale,
            FeedbackResponse.submitted_at,
            FeedbackResponse.business_day,
            FeedbackResponse.nps,
            FeedbackResponse.csat,
            FeedbackResponse.ces,
            FeedbackResponse.reasons,
            FeedbackResponse.comment.is_not(None) & (FeedbackResponse.comment != ""),
            FeedbackResponse.wait_s,
            FeedbackResponse.quoted_wait_s,
            FeedbackResponse.service_s,
            FeedbackResponse.transfers,
        )
        .join(Branch, Branch.id == FeedbackResponse.branch_id)
        .outerjoin(service, service.id == FeedbackResponse.service_id)
        .where(
            FeedbackResponse.business_day >= start,
            FeedbackResponse.business_day <= end,
            *_branch_filter(FeedbackResponse.branch_id, branch_ids),
        )
        .order_by(FeedbackResponse.business_day, FeedbackResponse.id)
    )
    for r in _stream(stmt):
        row = list(r)
        row[14] = list(row[14] or ())
        row[15] = bool(row[15])
        yield tuple(row)


def _opened_between(start: date, end: date, branch_ids: Sequence[int] | None):
    """`Case.opened_at` on the business days `start`..`end` of the case's branch: one range
    per time zone of the branches exported (a handful), false when there is none."""
    zones = db.session.scalars(
        select(Branch.timezone).distinct().where(*_branch_filter(Branch.id, branch_ids))
    ).all()
    ranges = []
    for zone in sorted(zones):
        tz = ZoneInfo(zone)
        since = datetime.combine(start, time(), tz)
        until = datetime.combine(end + timedelta(days=1), time(), tz)
        ranges.append(
            and_(Branch.timezone == zone, Case.opened_at >= since, Case.opened_at < until)
        )
    return or_(false(), *ranges)


def case_rows(start: date, end: date, branch_ids: Sequence[int] | None) -> Iterator[tuple]:
    """One row per case opened on the business days `start`..`end` (inclusive) of its branch
    (its local calendar days, like the visits' and the answers' `business_day`)."""
    service = aliased(Service)
    stmt = (
        select(
            Case.id,
            Case.response_id,
            Case.ticket_id,
            Branch.code,
            service.code,
            Case.level,
            Case.status,
            Case.owner_id,
            Case.department,
            Case.triggers,
            Case.opened_at,
            Case.due_at,
            Case.first_contact_at,
            Case.resolved_at,
            Case.root_cause,
            Case.reason_code,
            Case.recovery_nps,
        )
        .join(Branch, Branch.id == Case.branch_id)
        .outerjoin(service, service.id == Case.service_id)
        .where(
            _opened_between(start, end, branch_ids),
            *_branch_filter(Case.branch_id, branch_ids),
        )
        .order_by(Case.opened_at, Case.id)
    )
    for r in _stream(stmt):
        row = list(r)
        row[9] = list(row[9] or ())
        yield tuple(row)


EXPORTS = {
    "visits": (VISIT_COLUMNS, visit_rows),
    "feedback": (FEEDBACK_COLUMNS, feedback_rows),
    "cases": (CASE_COLUMNS, case_rows),
}
