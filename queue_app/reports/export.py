"""A report as CSV and as an Excel workbook (openpyxl). Pure: bytes from a `queries.Report`.

CSV: UTF-8 with a byte-order mark (Excel then reads it as UTF-8), comma separated, CRLF, one
header row of stable machine names (`CSV_HEADER`) so a spreadsheet or a script can rely on
them; one row per figure group: `section` is `total`, `series` (a local hour or a business
day), `branch`, `service`, `counter`, `staff` or `heat` (hour of the week: `key` is
`<weekday 0=Mon>-<hour>`, `issued` the arrivals and `wait_mean_s` their mean wait). Times in
seconds with one decimal, rates as fractions 0..1 with four decimals, empty when there is
nothing to divide.

XLSX: the same rows in a sheet `report` (numbers as numbers), and the heat map as a 7 x 24
grid of arrivals in a sheet `heatmap`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence

from openpyxl import Workbook

from .queries import DIMENSIONS, Report
from .stats import Summary

SUMMARY_COLUMNS = (
    "issued",
    "served",
    "called",
    "abandoned",
    "no_show",
    "transferred",
    "wait_mean_s",
    "wait_median_s",
    "wait_p90_s",
    "service_mean_s",
    "service_median_s",
    "service_p90_s",
    "abandonment_rate",
    "no_show_rate",
    "within_target",
)
CSV_HEADER = ("period", "start", "end", "section", "key", "name", *SUMMARY_COLUMNS)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def rounded(name: str, value):
    if value is None:
        return None
    if name.endswith("_s"):
        return round(value, 1)
    if name.endswith("rate") or name == "within_target":
        return round(value, 4)
    return value


def _summary_values(summary: Summary) -> list:
    return [rounded(name, getattr(summary, name)) for name in SUMMARY_COLUMNS]


def rows(
    report: Report, name_of: Callable[[str, object], str], weekdays: Sequence[str] = WEEKDAYS
) -> Iterator[list]:
    """The rows of the export (without the header); `name_of(kind, group_or_point)` names a
    group and `weekdays` the days Monday..Sunday, in the page's language."""
    head = [report.label, report.start.isoformat(), report.end.isoformat()]
    yield [*head, "total", "", name_of("total", None), *_summary_values(report.total)]
    for point in report.series:
        key = point.key.isoformat() if hasattr(point.key, "isoformat") else point.key
        yield [*head, "series", key, point.label, *_summary_values(point.summary)]
    for dim in DIMENSIONS:
        for group in report.groups[dim]:
            yield [
                *head,
                dim,
                "" if group.key is None else group.key,
                name_of(dim, group),
                *_summary_values(group.summary),
            ]
    blanks = [None] * (len(SUMMARY_COLUMNS) - 7)
    for day in report.heat:
        for cell in day:
            if not cell.arrivals:
                continue
            yield [
                *head,
                "heat",
                f"{cell.weekday}-{cell.hour}",
                f"{weekdays[cell.weekday]} {cell.hour:02d}:00",
                cell.arrivals,
                None,
                None,
                None,
                None,
                None,
                rounded("wait_mean_s", cell.wait_mean_s),
                *blanks,
            ]


def to_csv(report: Report, name_of, weekdays: Sequence[str] = WEEKDAYS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows(report, name_of, weekdays):
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(report: Report, name_of, weekdays: Sequence[str] = WEEKDAYS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "report"
    sheet.append(list(CSV_HEADER))
    for row in rows(report, name_of, weekdays):
        sheet.append(row)
    sheet.freeze_panes = "A2"
    heat = book.create_sheet("heatmap")
    heat.append(["", *[f"{h:02d}" for h in range(24)]])
    for day in report.heat:
        heat.append([weekdays[day[0].weekday], *[c.arrivals for c in day]])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
