from datetime import datetime, time

from babel.dates import format_time
from flask import current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from ..branches.models import Branch
from ..core.types import utcnow
from ..extensions import db
from ..i18n import SESSION_KEY, safe_next_path, supported
from . import bp


def _zone_label(local: datetime) -> tuple[str, str]:
    """("WIB", "UTC+7") for a moment in Jakarta; no abbreviation where tzdata has only
    a numeric one (Asia/Almaty says "+05")."""
    abbreviation = local.strftime("%Z")
    minutes = int(local.utcoffset().total_seconds()) // 60
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    offset = f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    return ("" if abbreviation[:1] in "+-" else abbreviation), offset


def branch_card(branch: Branch, now: datetime) -> dict:
    """What the start page shows about one branch, in the branch's own time zone."""
    locale = get_locale()
    local = branch.local(now)
    abbreviation, offset = _zone_label(local)
    spans = branch.hours_on(local.date())
    return {
        "code": branch.code,
        "name": branch.name,
        "address": branch.address,
        "timezone": branch.timezone,
        "zone": abbreviation,
        "offset": offset,
        "local_time": format_time(local.time(), "short", locale=locale),
        "hours_today": [
            (format_time(a, "short", locale=locale), format_time(b, "short", locale=locale))
            for a, b in spans
        ],
        # opening hours cannot say 24:00, so a day open until 23:59 or later is open all day
        "all_day": len(spans) == 1 and spans[0][0] == time.min and spans[0][1] >= time(23, 59),
        "is_open": branch.is_open_at(now),
        "services": sum(1 for s in branch.services if s.active),
        "counters": len(branch.counters),
    }


@bp.get("/")
def index():
    now = utcnow()
    branches = db.session.scalars(
        select(Branch).where(Branch.active.is_(True)).order_by(Branch.code)
    ).all()
    cards = [branch_card(b, now) for b in branches]
    return render_template(
        "web/index.html", branches=cards, open_count=sum(c["is_open"] for c in cards)
    )


@bp.get("/lang/<code>")
def switch_language(code):
    if code in supported():
        session[SESSION_KEY] = code
    # only a path on this site, never an open redirect
    return redirect(safe_next_path(request.args.get("next")) or url_for("web.index"))


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers. Reads nothing (a database outage must not get the
    processes restarted; `/readyz` says whether they can serve)."""
    return jsonify(status="ok")


def _redis_urls() -> list[str]:
    """The Redis servers this process depends on: the Socket.IO message queue and the rate
    limits' storage, each once."""
    urls = [
        current_app.config.get("SOCKETIO_MESSAGE_QUEUE"),
        current_app.config.get("RATELIMIT_STORAGE_URI"),
    ]
    out = []
    for url in urls:
        if url and url.startswith(("redis://", "rediss://", "unix://")) and url not in out:
            out.append(url)
    return out


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers and every Redis server in use answers a PING. 200
    `{"status": "ready", "checks": {...}}`, or 503 with `"unavailable"` and, per check, the kind
    of failure (never an address or a password)."""
    import redis

    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        checks["database"] = type(exc).__name__
    urls = _redis_urls()
    for k, url in enumerate(urls):
        name = "redis" if len(urls) == 1 else f"redis{k + 1}"
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
            checks[name] = "ok"
        except redis.RedisError as exc:
            checks[name] = type(exc).__name__
        finally:
            client.close()
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), (
        200 if ready else 503
    )
