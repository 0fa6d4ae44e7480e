"""Busy hours, read-only: typical waits by local hour of the week, the live wait, nearby
branches with shorter waits, and the context of the `templates/insights/_busy.html` partial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from babel.dates import format_date, format_time
from flask import current_app, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.routing import BuildError

from ..booking import services as booking
from ..branches.models import WEEKDAYS, Branch, Service
from ..extensions import db
from ..realtime.payloads import service_queues
from ..waits.present import wait_text
from .models import WaitStat

DEFAULT_WEEKS = 8
# an hour of the week with fewer called tickets than this in the weeks read is unknown
DEFAULT_MIN_SAMPLES = 5
DEFAULT_RADIUS_KM = 25.0
# the nearest candidates whose live wait is asked, at most, to find `limit` shorter ones
MAX_NEARBY_CHECKED = 12
EARTH_RADIUS_KM = 6371.0088
_PLAIN_SPACES = str.maketrans({"\u202f": " ", "\u00a0": " "})


@dataclass(frozen=True)
class Typical:
    """The typical wait of one local hour of the week. `wait_s` is None (unknown) when the
    weeks read hold fewer than the minimum of samples: never 0 for "no data"."""

    wait_s: int | None
    samples: int


@dataclass(frozen=True)
class Nearby:
    branch: Branch
    service: Service
    distance_km: float
    live_wait_s: int


def _config(name: str, default):
    return current_app.config.get(name, default) if current_app else default


def typical_waits(
    branch: Branch,
    service: Service,
    *,
    now: datetime,
    weeks: int = DEFAULT_WEEKS,
    min_samples: int | None = None,
) -> dict[tuple[int, int], Typical]:
    """{(weekday 0=Monday, local hour 0-23): Typical} over the last `weeks` finished weeks.

    Reads the hourly roll-up (`WaitStat`, at most weeks x 7 x 24 small rows through its
    primary key) rather than the tickets: a year of history costs nothing more. The typical
    wait is the median of the hourly medians weighted by their samples (an hour's own median
    is exact; this keeps one unusual day from moving the result). Hours without any sample
    are absent; hours with too few are `Typical(None, n)`.
    """
    if min_samples is None:
        min_samples = _config("BUSY_HOURS_MIN_SAMPLES", DEFAULT_MIN_SAMPLES)
    today = branch.business_day(now)
    rows = db.session.execute(
        select(WaitStat.weekday, WaitStat.hour, WaitStat.samples, WaitStat.median_wait_s).where(
            WaitStat.branch_id == branch.id,
            WaitStat.service_id == service.id,
            WaitStat.day >= today - timedelta(days=7 * weeks),
            WaitStat.day < today,
        )
    )
    grouped: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for weekday, hour, samples, median in rows:
        grouped.setdefault((weekday, hour), []).append((median, samples))
    result = {}
    for key, items in grouped.items():
        total = sum(n for _m, n in items)
        if total < min_samples:
            result[key] = Typical(None, total)
            continue
        items.sort()
        seen = 0
        for median, n in items:
            seen += n
            if 2 * seen >= total:
                result[key] = Typical(median, total)
                break
    return result


def live_wait(branch: Branch, service: Service, *, now: datetime) -> int | None:
    """The estimated wait a ticket taken now would be told (`realtime.payloads.service_queues`,
    the estimator's of `waits.live`); None while no counter serving the service is open.
    `now` is the present: the estimate reads the queue as it is."""
    return _live(branch, service)["estimated_wait_s"]


def _live(branch: Branch, service: Service) -> dict:
    rows = service_queues(db.session, branch, {service.id})
    if rows:
        return rows[0]
    return {"waiting": 0, "open_counters": 0, "estimated_wait_s": None}  # an inactive service


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def nearby_branches(
    branch: Branch,
    service: Service,
    *,
    now: datetime,
    limit: int = 3,
    radius_km: float | None = None,
    own_wait_s: int | None = ...,  # type: ignore[assignment]
) -> list[Nearby]:
    """Other active branches offering the same service (by code) within `radius_km`, nearest
    first, whose live wait is shorter than this branch's; at most `limit`.

    A branch whose wait is unknown (no counter open) is never suggested; when this branch's
    own wait is unknown, any nearby branch with a known wait is. Distances are computed in
    Python (haversine) over the network's branches with coordinates: one query, fine for
    hundreds of branches. Only the nearest `MAX_NEARBY_CHECKED` candidates' live waits are
    asked (two queries each).
    """
    if branch.latitude is None or branch.longitude is None or limit <= 0:
        return []
    if radius_km is None:
        radius_km = _config("BUSY_HOURS_NEARBY_KM", DEFAULT_RADIUS_KM)
    if own_wait_s is ...:
        own_wait_s = live_wait(branch, service, now=now)
    candidates = db.session.execute(
        select(Branch, Service)
        .join(Service, Service.branch_id == Branch.id)
        .where(
            Branch.active.is_(True),
            Branch.id != branch.id,
            Branch.latitude.is_not(None),
            Branch.longitude.is_not(None),
            Service.code == service.code,
            Service.active.is_(True),
        )
    ).all()
    ranked = []
    for other, other_service in candidates:
        d = distance_km(branch.latitude, branch.longitude, other.latitude, other.longitude)
        if d <= radius_km:
            ranked.append((d, other.code, other, other_service))
    ranked.sort(key=lambda r: (r[0], r[1]))
    result = []
    for d, _code, other, other_service in ranked[:MAX_NEARBY_CHECKED]:
        wait = live_wait(other, other_service, now=now)
        if wait is None or (own_wait_s is not None and wait >= own_wait_s):
            continue
        result.append(Nearby(other, other_service, round(d, 1), wait))
        if len(result) == limit:
            break
    return result


def branch_url(code: str) -> str:
    """The phone page of a branch: the `mobile.branch` endpoint when it exists, else
    `/b/<code>`. The one place to change if the branch page moves."""
    try:
        return url_for("mobile.branch", code=code)
    except BuildError:
        return f"/b/{code}"


def open_hours(branch: Branch, weekday: int) -> list[int]:
    """The local hours (0-23) during which the branch is open for at least part of the hour
    on that weekday, by its opening hours."""
    spans = (branch.opening_hours or {}).get(WEEKDAYS[weekday], [])
    hours = set()
    for a, b in spans:
        start, end = time.fromisoformat(a), time.fromisoformat(b)
        # the hour [h:00, h+1:00) overlaps [start, end)
        hours.update(h for h in range(24) if time(h) < end and (h == 23 or time(h + 1) > start))
    return sorted(hours)


def busy_hours(
    branch: Branch, service: Service, *, now: datetime, weeks: int | None = None
) -> dict:
    """The API's view: every opening hour of the week and every hour with history."""
    weeks = weeks or _config("BUSY_HOURS_WEEKS", DEFAULT_WEEKS)
    typical = typical_waits(branch, service, now=now, weeks=weeks)
    own = live_wait(branch, service, now=now)
    keys = set(typical)
    for weekday in range(7):
        keys.update((weekday, h) for h in open_hours(branch, weekday))
    return {
        "timezone": branch.timezone,
        "live_wait_s": own,
        "hours": [
            {
                "weekday": weekday,
                "hour": hour,
                "typical_wait_s": typical[(weekday, hour)].wait_s
                if (weekday, hour) in typical
                else None,
                "samples": typical[(weekday, hour)].samples if (weekday, hour) in typical else 0,
            }
            for weekday, hour in sorted(keys)
        ],
        "nearby": [
            {
                "code": n.branch.code,
                "name": n.branch.name,
                "distance_km": n.distance_km,
                "live_wait_s": n.live_wait_s,
            }
            for n in nearby_branches(branch, service, now=now, own_wait_s=own)
        ],
    }


# --- the partial ---------------------------------------------------------------------------


def level(wait_s: int | None, service: Service) -> str:
    """quiet (at most half the service's target wait), busy (above the target), moderate,
    or unknown."""
    if wait_s is None:
        return "unknown"
    if wait_s * 2 <= service.target_wait_s:
        return "quiet"
    if wait_s > service.target_wait_s:
        return "busy"
    return "moderate"


def minutes(wait_s: int | None) -> int | None:
    return None if wait_s is None else max(1, math.ceil(wait_s / 60))


def _closed_reason(branch: Branch, day: date) -> str | None:
    return booking.closed_reason(branch, day)


def _hour_text(hour: int, locale: str) -> str:
    return format_time(time(hour % 24), "short", locale=locale).translate(_PLAIN_SPACES)


def _quiet_summary(cells: list[dict], locale: str) -> str:
    """The text alternative of a day's strip: "Usually quiet 13:00-15:00"."""
    known = [c for c in cells if c["level"] not in ("unknown", "closed")]
    if not known:
        return _("Not enough history for this day yet.")
    runs, run = [], []
    for cell in cells:
        if cell["level"] == "quiet":
            if run and run[-1] + 1 != cell["hour"]:
                runs.append(run)
                run = []
            run.append(cell["hour"])
        elif cell["level"] != "unknown" and run:
            runs.append(run)
            run = []
    if run:
        runs.append(run)
    if not runs:
        if all(c["level"] == "busy" for c in known):
            return _("Usually busy all day.")
        return _("Usually no quiet hour.")
    spans = ", ".join(
        f"{_hour_text(r[0], locale)}\u2013{_hour_text(r[-1] + 1, locale)}" for r in runs
    )
    return _("Usually quiet %(hours)s.", hours=spans)


def busy_context(
    branch: Branch, service: Service, *, now: datetime, locale: str, days: int = 3
) -> dict:
    """Everything `templates/insights/_busy.html` shows, as the variable `busy`: the live
    wait, the typical wait of each opening hour of today and the next open days, a sentence
    per day for screen readers, and nearby branches with shorter waits."""
    with force_locale(locale):
        return _busy_context(branch, service, now=now, locale=locale, days=days)


def _busy_context(branch, service, *, now, locale, days) -> dict:
    weeks = _config("BUSY_HOURS_WEEKS", DEFAULT_WEEKS)
    typical = typical_waits(branch, service, now=now, weeks=weeks)
    live = _live(branch, service)
    own = live["estimated_wait_s"]
    local_now = branch.local(now)
    today = local_now.date()

    shown: list[tuple[date, str | None]] = [(today, _closed_reason(branch, today))]
    day = today
    for _step in range(14):
        if len(shown) >= days:
            break
        day += timedelta(days=1)
        if open_hours(branch, day.weekday()) and _closed_reason(branch, day) is None:
            shown.append((day, None))
    columns = sorted({h for d, _r in shown for h in open_hours(branch, d.weekday())})

    rows = []
    for d, reason in shown:
        hours_open = set(open_hours(branch, d.weekday())) if reason is None else set()
        cells = []
        for hour in columns:
            if hour not in hours_open:
                cells.append({"hour": hour, "level": "closed", "minutes": None, "now": False})
                continue
            t = typical.get((d.weekday(), hour))
            wait = t.wait_s if t else None
            cells.append(
                {
                    "hour": hour,
                    "level": level(wait, service),
                    "minutes": minutes(wait),
                    "now": d == today and hour == local_now.hour,
                }
            )
        if d == today:
            label = _("Today")
        elif d == today + timedelta(days=1):
            label = _("Tomorrow")
        else:
            label = format_date(d, "EEE d", locale=locale).translate(_PLAIN_SPACES)
        if not hours_open:
            summary = _("Closed")
            if reason and reason != "closed":
                summary = _("Closed: %(reason)s", reason=reason)
        else:
            summary = _quiet_summary(cells, locale)
        rows.append(
            {
                "date": d,
                "label": label,
                "long_label": format_date(d, "full", locale=locale).translate(_PLAIN_SPACES),
                "closed": not hours_open,
                "cells": cells,
                "summary": summary,
            }
        )

    nearby = [
        {
            "code": n.branch.code,
            "name": n.branch.name,
            "city": n.branch.city,
            "distance_km": n.distance_km,
            "live_wait_s": n.live_wait_s,
            "minutes": minutes(n.live_wait_s),
            "url": branch_url(n.branch.code),
        }
        for n in nearby_branches(branch, service, now=now, own_wait_s=own)
    ]
    return {
        "branch": branch,
        "service": service,
        "service_name": service.display_name(locale),
        "timezone": branch.timezone,
        "live_wait_s": own,
        "live_minutes": minutes(own),
        "live_text": wait_text(live),  # the estimator's range, "10-15 min" (waits/)
        "live_level": level(own, service),
        "waiting": live["waiting"],
        "open_now": own is not None,
        "columns": [{"hour": h, "label": f"{h:02d}"} for h in columns],
        "days": rows,
        "nearby": nearby,
        "has_history": any(t.wait_s is not None for t in typical.values()),
    }
