"""Prometheus metrics, served at `GET /metrics` to the operator's Prometheus (never the public).

Families (all prefixed `queue_app_`):

| family | type | labels |
| --- | --- | --- |
| `http_requests_total` | counter | `method`, `endpoint` (url rule), `status` (`2xx` ...) |
| `http_request_duration_seconds` | histogram | `endpoint` |
| `tickets_issued_total`, `tickets_called_total` | counter | `branch` (code) |
| `socket_clients` | gauge | `audience` (display, kiosk, staff, ticket, dashboard, feedback) |
| `job_runs_total` | counter | `job`, `outcome` (ok, partial: a branch failed, error) |
| `job_duration_seconds` | histogram | `job` |
| `outbox_pending_messages`, `outbox_due_messages` | gauge, read at scrape | `channel` |
| `outbox_oldest_due_age_seconds` | gauge, read at scrape | `channel` |
| `backlog_up` | gauge, read at scrape | `source` (1: its query answered) |

Every label is bounded: endpoints are the application's url rules (`unmatched` for a 404
outside them), methods the HTTP ones (`other` else), status classes five, audiences six, jobs
and outcomes the scheduler's own. Tickets are counted per branch code: a bank has hundreds of
branches, which is a few hundred series per family, and "branch X issued nothing for an
hour while open" is the alert an operator wants; per service would multiply that by the
services of each branch for a question the reports answer better.

Tickets are counted from the committed `journey` events (`core/events.py`), like the realtime
pushes and the alert evaluation: a rolled-back issue or call counts nothing.

Several processes (gunicorn): set `PROMETHEUS_MULTIPROC_DIR` to an empty directory writable by
every web worker (and the scheduler, on the same machine) before they start, and run gunicorn
with `-c python:queue_app.observability.gunicorn_conf` (it removes the files of processes
that are gone at start-up and marks exited workers dead, so their socket gauges drop out).
Each process writes its values to files there and `/metrics` adds them up
(prometheus-client's multiprocess mode). Without the variable each process has its own
registry (the embedded profile: one process). The asyncio realtime process always keeps its
own registry and serves its own `/metrics` (`realtime/aio.py`).

Backlogs are read from the database at scrape time by the sources in `BACKLOG_SOURCES`
(`backlog_source("name")` registers one more: a function of `(session, now)` yielding metric
families; webhook deliveries will be one).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from ..core.networks import address_of, parse_networks, within

log = logging.getLogger(__name__)

AUDIENCES = ("display", "kiosk", "staff", "ticket", "dashboard", "feedback")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
JOB_OUTCOMES = ("ok", "partial", "error")

HTTP_REQUESTS = Counter(
    "queue_app_http_requests_total",
    "HTTP requests answered, by method, endpoint (url rule) and status class.",
    ("method", "endpoint", "status"),
)
HTTP_LATENCY = Histogram(
    "queue_app_http_request_duration_seconds",
    "Time from the start of a request to its response, by endpoint (url rule).",
    ("endpoint",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TICKETS_ISSUED = Counter(
    "queue_app_tickets_issued_total",
    "Tickets issued (committed), by branch code.",
    ("branch",),
)
TICKETS_CALLED = Counter(
    "queue_app_tickets_called_total",
    "Tickets called to a counter (committed), by branch code.",
    ("branch",),
)
SOCKET_CLIENTS = Gauge(
    "queue_app_socket_clients",
    "Socket.IO clients connected to /floor, by audience.",
    ("audience",),
    multiprocess_mode="livesum",
)
JOB_RUNS = Counter(
    "queue_app_job_runs_total",
    "Scheduled job runs, by job and outcome (ok; partial: a branch failed; error).",
    ("job", "outcome"),
)
JOB_DURATION = Histogram(
    "queue_app_job_duration_seconds",
    "Duration of scheduled job runs, by job.",
    ("job",),
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)

for _audience in AUDIENCES:  # every family shows from the first scrape, with zeros
    SOCKET_CLIENTS.labels(_audience)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


# --- HTTP ------------------------------------------------------------------------------------


def observe_request(method: str, endpoint: str | None, status: int, seconds: float) -> None:
    endpoint = endpoint or "unmatched"
    HTTP_REQUESTS.labels(
        method if method in METHODS else "other", endpoint, f"{status // 100}xx"
    ).inc()
    HTTP_LATENCY.labels(endpoint).observe(seconds)


# --- sockets ---------------------------------------------------------------------------------


def socket_connected(audience: str) -> None:
    if audience in AUDIENCES:
        SOCKET_CLIENTS.labels(audience).inc()


def socket_disconnected(audience: str) -> None:
    if audience in AUDIENCES:
        SOCKET_CLIENTS.labels(audience).dec()


# --- jobs ------------------------------------------------------------------------------------

_job: ContextVar[dict | None] = ContextVar("queue_app_job", default=None)


def current_job() -> str | None:
    run = _job.get()
    return run["name"] if run else None


@contextmanager
def job_run(name: str):
    """One run of a scheduled job: counted with its outcome, timed, and its log lines carry
    `job` (`logs.py`)."""
    run = {"name": name, "failed_units": 0}
    token = _job.set(run)
    started = time.perf_counter()
    outcome = "error"
    try:
        yield run
        outcome = "partial" if run["failed_units"] else "ok"
    finally:
        _job.reset(token)
        JOB_RUNS.labels(name, outcome).inc()
        JOB_DURATION.labels(name).observe(time.perf_counter() - started)


def unit_failed() -> None:
    """A unit of the running job (one branch) failed and was rolled back; the run goes on and
    counts as `partial`."""
    run = _job.get()
    if run is not None:
        run["failed_units"] += 1


# --- tickets, from committed journey events --------------------------------------------------

_branch_codes: dict[int, str] = {}
_codes_lock = threading.Lock()


def clear_cache() -> None:
    """Forget the branch codes (tests: a new database reuses the ids)."""
    with _codes_lock:
        _branch_codes.clear()


def _branch_code(branch_id: int) -> str:
    code = _branch_codes.get(branch_id)
    if code is not None:
        return code
    from sqlalchemy import select

    from ..branches.models import Branch
    from ..core.db import READ_ONLY
    from ..extensions import db

    # after the commit: the session may not emit SQL here; a connection of its own, read-only
    # (no write lock on SQLite). Once per branch and process.
    try:
        with db.engine.connect().execution_options(**{READ_ONLY: True}) as conn:
            code = conn.execute(select(Branch.code).where(Branch.id == branch_id)).scalar()
            conn.rollback()
    except Exception:
        log.warning("metrics: the code of branch %s could not be read", branch_id, exc_info=True)
        return f"id:{branch_id}"
    if code is None:
        return f"id:{branch_id}"
    with _codes_lock:
        _branch_codes[branch_id] = code
    return code


def _on_journey(_sender, branch_id=None, kind=None, **_payload) -> None:
    if kind == "issued":
        family = TICKETS_ISSUED
    elif kind == "called":
        family = TICKETS_CALLED
    else:
        return
    try:
        family.labels(_branch_code(branch_id)).inc()
    except RuntimeError:  # no application context: no database to name the branch from
        return


# --- backlogs, read at scrape time -----------------------------------------------------------

BacklogSource = Callable[..., Iterable]
BACKLOG_SOURCES: dict[str, BacklogSource] = {}


def backlog_source(name: str):
    """Register `fn(session, now)` yielding prometheus metric families, read on each scrape
    in a read-only transaction; a source that fails is reported as `backlog_up{source} 0`."""

    def register(fn):
        BACKLOG_SOURCES[name] = fn
        return fn

    return register


@backlog_source("outbox")
def outbox_backlog(session, now: datetime):
    """Messages waiting in the outbox per channel: pending (all not yet sent or given up), due
    (their next attempt is now or past: the delivery job is behind if this stays high) and the
    age of the oldest due one."""
    from sqlalchemy import case, func, select

    from ..notify.models import Channel, OutboxMessage, OutboxStatus

    due = OutboxMessage.next_attempt_at <= now
    rows = session.execute(
        select(
            OutboxMessage.channel,
            func.count(),
            func.sum(case((due, 1), else_=0)),
            func.min(case((due, OutboxMessage.next_attempt_at), else_=None)),
        )
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .group_by(OutboxMessage.channel)
    ).all()
    by_channel = {Channel(c).value: (n, d or 0, oldest) for c, n, d, oldest in rows}
    pending = GaugeMetricFamily(
        "queue_app_outbox_pending_messages",
        "Outbox messages not yet sent nor given up, by channel.",
        labels=("channel",),
    )
    due_family = GaugeMetricFamily(
        "queue_app_outbox_due_messages",
        "Outbox messages whose next attempt is due, by channel.",
        labels=("channel",),
    )
    age = GaugeMetricFamily(
        "queue_app_outbox_oldest_due_age_seconds",
        "Seconds since the oldest due outbox message became due (0: none due), by channel.",
        labels=("channel",),
    )
    for channel in Channel:
        n, d, oldest = by_channel.get(channel.value, (0, 0, None))
        pending.add_metric([channel.value], n)
        due_family.add_metric([channel.value], d)
        if oldest is not None and oldest.tzinfo is None:  # SQLite's MIN() gives the raw text
            oldest = None
        age.add_metric([channel.value], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    yield pending
    yield due_family
    yield age


class _BacklogCollector:
    def __init__(self, session, now):
        self.session, self.now = session, now

    def collect(self):
        from ..core.db import read_only

        up = GaugeMetricFamily(
            "queue_app_backlog_up",
            "1 if the backlog source's query answered at this scrape, else 0.",
            labels=("source",),
        )
        for name, source in BACKLOG_SOURCES.items():
            try:
                read_only(self.session)
                families = list(source(self.session, self.now))
                ok = 1
            except Exception as exc:  # every scrape would repeat a traceback: its kind only
                log.warning("metrics: backlog source %s failed: %s", name, type(exc).__name__)
                families, ok = [], 0
            finally:
                self.session.rollback()
            yield from families
            up.add_metric([name], ok)
        yield up


def exposition(session=None, now: datetime | None = None) -> bytes:
    """The text of one scrape: this process's metrics (all processes' in multiprocess mode)
    and, given a session, the backlogs read now."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    text = generate_latest(registry)
    if session is not None:
        from ..core.types import utcnow

        backlog = CollectorRegistry(auto_describe=False)
        backlog.register(_BacklogCollector(session, now or utcnow()))
        text += generate_latest(backlog)
    return text


# --- who may scrape --------------------------------------------------------------------------


class Access:
    """`METRICS_TOKEN` (a bearer token) and `METRICS_ALLOW` (addresses and networks, comma
    separated): each one configured must pass; neither configured: /metrics is off (404)."""

    def __init__(self, config):
        self.token = config.get("METRICS_TOKEN") or None
        self.networks = parse_networks(config.get("METRICS_ALLOW"))

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.networks)

    def check(self, remote_addr: str | None, authorization: str | None) -> int:
        """200, or the status to refuse with (404 off, 403 address, 401 token)."""
        import hmac

        if not self.enabled:
            return 404
        if self.networks:
            address = address_of(remote_addr)
            if address is None or not within(address, self.networks):
                return 403
        if self.token:
            scheme, _, given = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                return 401
        return 200


REFUSALS = {
    404: ("not_found", "not found"),
    403: ("forbidden", "metrics are not served to this address"),
    401: ("unauthorized", "a valid metrics bearer token is required"),
}


def init_metrics(app) -> None:
    from flask import Blueprint, Response, request

    from ..core.events import signal

    parse_networks(app.config.get("METRICS_ALLOW"))  # a wrong network fails at start-up, not later
    signal("journey").connect(_on_journey, weak=False)

    bp = Blueprint("observability", __name__)

    @bp.get("/metrics")
    def metrics():
        from ..api import error_body
        from ..extensions import db

        status = Access(app.config).check(request.remote_addr, request.headers.get("Authorization"))
        if status != 200:
            code, message = REFUSALS[status]
            response, status = error_body(status, message, code)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response, status
        return Response(exposition(db.session), content_type=CONTENT_TYPE_LATEST)

    app.register_blueprint(bp)
