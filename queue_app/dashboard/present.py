"""What the dashboard pages show, formatted in the page's language, and the same figures as
plain JSON (`state.json`): the page and the JSON come from one place, so a refetch shows
exactly what a reload would."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import render_template, url_for
from flask_babel import format_decimal, format_time, get_locale
from flask_babel import gettext as _

from ..cx import charts
from ..feedback.metrics import display
from ..realtime.payloads import iso
from ..waits.present import wait_text
from . import queries as q


def status_name(colour: str) -> str:
    return {
        q.GREEN: _("On target"),
        q.AMBER: _("Watch"),
        q.RED: _("Action needed"),
    }[colour]


def counter_state_name(state: str) -> str:
    return {
        "serving": _("Serving"),
        "idle": _("Idle"),
        "paused": _("Paused"),
        "closed": _("Closed"),
    }[state]


def duration(seconds: int | None) -> str:
    """12 s, 7 min, 1 h 05 min; a dash for no value."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return _("%(s)d s", s=seconds)
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)d min", m=minutes)
    return _("%(h)d h %(m)02d min", h=minutes // 60, m=minutes % 60)


def clock(seconds: int | None) -> str:
    """An elapsed time as m:ss (or h:mm:ss)."""
    if seconds is None:
        return "—"
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def percent(value: float | None) -> str:
    shown = display(value)
    return "—" if shown is None else format_decimal(shown, "#,##0.0") + "%"


def nps_text(tally) -> dict:
    result = tally.nps()
    score = display(result.score)
    return {
        "score": score,
        "n": result.n,
        "margin": display(result.margin),
        "text": "—" if score is None else format_decimal(score, "+#,##0.0;-#,##0.0"),
        "margin_text": None
        if result.margin is None
        else "±" + format_decimal(display(result.margin), "#,##0.0"),
    }


def locale() -> str:
    return str(get_locale() or "id")


def alert_items(alerts: list, now: datetime) -> list[dict]:
    from ..alerts import queries as alert_queries

    items = []
    for alert in sorted(alerts, key=lambda a: (a.status != "raised", a.raised_at), reverse=False):
        payload = alert_queries.alert_payload(alert, locale())
        items.append(
            {
                "alert": alert,
                "payload": payload,
                "message": payload.get("message") or "",
                "branch": alert.branch,
                "acknowledged": q.is_acknowledged(alert),
                "since": duration(q._seconds(now, alert.raised_at)),
            }
        )
    return items


def row_context(row: q.BranchRow, now: datetime) -> dict:
    return {
        "row": row,
        "status_name": status_name(row.status),
        "longest": duration(row.longest_wait_s),
        "hour_wait": duration(row.hour_wait.mean_s),
        "nps": nps_text(row.feedback),
    }


def row_json(row: q.BranchRow) -> dict:
    nps = row.feedback.nps()
    return {
        "id": row.branch.id,
        "code": row.branch.code,
        "name": row.branch.name,
        "timezone": row.branch.timezone,
        "seq": row.branch.event_seq,
        "status": row.status,
        "waiting": row.waiting,
        "longest_wait_s": row.longest_wait_s,
        "hour_wait": {"n": row.hour_wait.n, "mean_s": row.hour_wait.mean_s},
        "open_counters": row.open_counters,
        "served_today": row.served_today,
        "nps": {"score": display(nps.score), "n": nps.n, "margin": display(nps.margin)},
        "open_alerts": len(row.alerts),
    }


def alert_json(items: list[dict]) -> list[dict]:
    return [{**i["payload"], "branch": i["branch"].code} for i in items]


def overview_state(rows: list[q.BranchRow], now: datetime, can_ack) -> dict:
    alerts = alert_items([a for r in rows for a in r.alerts], now)
    ctx = {
        "rows": [row_context(r, now) for r in rows],
        "alerts": alerts,
        "can_ack": can_ack,
        "back": url_for("dashboard.overview"),
        "updated": _(
            "%(time)s UTC", time=format_time(now.astimezone(UTC), "HH:mm:ss", rebase=False)
        ),
        "totals": {
            "waiting": sum(r.waiting for r in rows),
            "open_counters": sum(r.open_counters for r in rows),
            "served_today": sum(r.served_today for r in rows),
            "alerts": len(alerts),
            "red": sum(1 for r in rows if r.status == q.RED),
            "amber": sum(1 for r in rows if r.status == q.AMBER),
        },
    }
    return {
        "ctx": ctx,
        "json": {
            "generated_at": iso(now),
            "branches": [row_json(r) for r in rows],
            "alerts": alert_json(alerts),
            "html": {
                "summary": render_template("dashboard/_summary.html", **ctx),
                "branches": render_template("dashboard/_branches.html", **ctx),
                "alerts": render_template("dashboard/_alerts.html", **ctx),
            },
        },
    }


def _day_charts(hours: list[q.HourRow]) -> dict:
    labels = [f"{h.hour:02d}" for h in hours]  # the hour; the table says "08:00-09:00"
    peak_grid = q.nice_grid(max([h.peak_waiting for h in hours] + [4]))
    waiting = charts.trend(
        [
            {
                "label": label,
                "value": h.peak_waiting,
                "small": False,
                "n": h.peak_waiting,
                "text": str(h.peak_waiting),
            }
            for label, h in zip(labels, hours, strict=True)
        ],
        charts.Box(width=640, height=230, left=44, right=12, top=14, bottom=34),
        grid=peak_grid,
    )
    minutes = [None if h.mean_wait_s is None else round(h.mean_wait_s / 60, 1) for h in hours]
    wait_grid = q.nice_grid(max([m or 0 for m in minutes] + [4]))
    waits = charts.bars(
        [
            {
                "label": label,
                "value": m,
                "n": h.called,
                "small": False,
                "text": "" if m is None else format_decimal(m, "#,##0.#"),
            }
            for label, h, m in zip(labels, hours, minutes, strict=True)
        ],
        charts.Box(width=640, height=230, left=44, right=8, top=18, bottom=50),
        grid=wait_grid,
    )
    return {"waiting": waiting, "waits": waits}


def branch_state(view: q.BranchView, now: datetime, can_ack: bool) -> dict:
    lang = locale()
    alerts = alert_items(view.row.alerts, now)
    ctx = {
        "view": view,
        "branch": view.branch,
        "summary": row_context(view.row, now),
        "alerts": alerts,
        "can_ack": lambda _branch: can_ack,
        "back": url_for("dashboard.branch", code=view.branch.code),
        "lang": lang,
        "updated": format_time(view.branch.local(now), "HH:mm:ss", rebase=False),
        "queues": [
            {
                "q": r,
                "name": r.service.display_name(lang),
                "longest": duration(r.longest_wait_s),
                "ewt": duration(r.estimated_wait_s),
                # the range customers are told ("10-15 min"), the mean beside it
                "ewt_range": wait_text(
                    {
                        "estimated_wait_s": r.estimated_wait_s,
                        "estimated_wait_range": r.estimated_wait_range,
                    }
                ),
                "target": duration(r.target_wait_s),
            }
            for r in view.queues
        ],
        "counters": [
            {
                "c": r,
                "state_name": counter_state_name(r.state),
                "elapsed": clock(r.elapsed_s),
                "mean": duration(r.mean_service_s),
                "services": ", ".join(s.display_name(lang) for s in r.counter.services),
            }
            for r in view.counters
        ],
        "services": [
            {
                "s": r,
                "name": r.service.display_name(lang),
                "mean": duration(r.mean_service_s),
                "median": duration(r.median_service_s),
                "within": percent(r.within_share),
                "target": duration(r.service.target_wait_s),
            }
            for r in view.services
        ],
        "within_total": percent(view.within_share),
        "hours": [
            {
                "h": h,
                "label": f"{h.hour:02d}:00-{(h.hour + 1) % 24:02d}:00",
                "mean": duration(h.mean_wait_s),
                "longest": duration(h.longest_wait_s),
            }
            for h in view.hours
        ],
        "charts": _day_charts(view.hours) if view.hours else None,
    }
    data = {
        "generated_at": iso(now),
        "branch": row_json(view.row),
        "business_day": view.day.isoformat(),
        "queues": [
            {
                "service": r.service.code,
                "waiting": r.waiting,
                "longest_wait_s": r.longest_wait_s,
                "estimated_wait_s": r.estimated_wait_s,
                "estimated_wait_range": r.estimated_wait_range,
                "open_counters": r.open_counters,
                "target_wait_s": r.target_wait_s,
                "status": r.colour,
            }
            for r in view.queues
        ],
        "counters": [
            {
                "id": r.counter.id,
                "name": r.counter.name,
                "state": r.state,
                "ticket": r.ticket.number if r.ticket is not None else None,
                "elapsed_s": r.elapsed_s,
                "served_today": r.served_today,
                "mean_service_s": r.mean_service_s,
            }
            for r in view.counters
        ],
        "services": [
            {
                "service": r.service.code,
                "served": r.served,
                "mean_service_s": r.mean_service_s,
                "median_service_s": r.median_service_s,
                "called": r.called,
                "within_target": r.within_target,
                "within_target_percent": display(r.within_share),
            }
            for r in view.services
        ],
        "within_target": {
            "called": view.called,
            "within": view.within_target,
            "percent": display(view.within_share),
        },
        "hours": [
            {
                "hour": h.hour,
                "peak_waiting": h.peak_waiting,
                "called": h.called,
                "mean_wait_s": h.mean_wait_s,
                "longest_wait_s": h.longest_wait_s,
            }
            for h in view.hours
        ],
        "alerts": alert_json(alerts),
    }
    data["html"] = {
        "summary": render_template("dashboard/_branch_summary.html", **ctx),
        "alerts": render_template("dashboard/_alerts.html", **ctx),
        "floor": render_template("dashboard/_floor.html", **ctx),
        "day": render_template("dashboard/_day.html", **ctx),
    }
    return {"ctx": ctx, "json": data}
