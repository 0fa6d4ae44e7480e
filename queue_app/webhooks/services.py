"""Webhook endpoints, the deliveries of each event, and sending them.

Writing (`record`): the delivery rows of an event are written in the caller's unit of work
(the receivers in `receivers.py` run inside the transaction of the change, like the outbox of
`notify/`), one row per active endpoint that wants the event (and the event's branch). A
rolled-back change writes nothing; a committed one always has its rows.

Sending (`deliver_due`), at least once, each step committed before the next (the outbox's
scheme, `notify/services.py`):

1. **Claim** (one short transaction): due pending rows `FOR UPDATE SKIP LOCKED` (PostgreSQL;
   SQLite's `BEGIN IMMEDIATE` serializes the transaction), each `attempts + 1` and leased
   (`next_try_at = now + WEBHOOK_LEASE_S`): no other run takes it until the lease ends. What
   is needed to send is copied out; nothing is sent with a transaction open.
2. **Send**: `POST` the JSON body with `X-QueueApp-Event`, `X-QueueApp-Delivery` (the
   delivery's uid: the same on every attempt and replay), `X-QueueApp-Timestamp` (Unix
   seconds) and `X-QueueApp-Signature` (`signing.py`), with a timeout. A 2xx answer is
   delivered; anything else (another status, a redirect, a refused connection, a timeout) is
   a failed attempt.
3. **Record** (one transaction per delivery), only while the row is still the one claimed
   (pending, same attempts): delivered, or the failure with its next try after
   `WEBHOOK_RETRY_BASE_S * WEBHOOK_RETRY_FACTOR ** (n - 1)` seconds (1, 5, 25, 125, 625 min
   by default), or `failed` after `WEBHOOK_MAX_ATTEMPTS` attempts.

`replay` puts a failed delivery back: pending now, one more attempt allowed, same payload and
uid.

The active endpoints that `record` writes for are kept per process (`active_endpoints`, one
`EndpointCache` per app): every call and finish asks for them, and most banks have none, so
the common case sends no statement. The list is read again when older than
`WEBHOOK_ENDPOINTS_CACHE_S` (0: read every time), and at once in the process that changes an
endpoint (any insert, update or delete of one, when its transaction ends: committed or rolled
back); a session with such a change not yet committed reads its own. Another process sees a
change within the interval; a delivery it writes meanwhile for an endpoint turned off is not
sent (`claim_due` reads the endpoint afresh).
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from ..branches.models import Branch
from ..core import sealing
from ..core.errors import Conflict, InvalidInput
from ..extensions import db
from . import destinations, signing
from .events import iso
from .models import EVENTS, DeliveryStatus, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

USER_AGENT = "queue_app-webhooks/1"


# --- endpoints ---------------------------------------------------------------------------------


def _clean_url(url) -> str:
    url = (url or "").strip() if isinstance(url, str) else ""
    parts = urlsplit(url)
    if (
        not url
        or len(url) > 500
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in url)
    ):
        raise InvalidInput("the URL must be an http:// or https:// address", "invalid_url")
    try:
        destinations.check_when_saved(parts.hostname)
    except destinations.Refused as exc:
        raise InvalidInput(str(exc), "url_not_allowed") from None
    return url


def _clean_events(events) -> list[str]:
    chosen = sorted({e for e in (events or ()) if isinstance(e, str)})
    if not chosen or any(e not in EVENTS for e in chosen):
        raise InvalidInput("choose one or more of the events", "invalid_events")
    return chosen


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if len(name) > 80:
        raise InvalidInput("the name is longer than 80 characters", "invalid_name")
    return name


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


SEALED_AS = "webhook-secret"  # the purpose its key is derived for (core/sealing.py)


def signing_secret(endpoint: WebhookEndpoint) -> str:
    """The endpoint's secret, opened. `sealing.Unreadable` when SECRET_KEY changed without
    the earlier key in SECRET_KEY_FALLBACKS."""
    return sealing.unseal(endpoint.secret_sealed, SEALED_AS)


def _set_secret(endpoint: WebhookEndpoint, secret: str) -> None:
    endpoint.secret_sealed = sealing.seal(secret, SEALED_AS)


def create_endpoint(
    *, url, events, now: datetime, name="", branch: Branch | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new active endpoint and its secret (shown once by the caller). Flushes."""
    secret = new_secret()
    endpoint = WebhookEndpoint(
        name=_clean_name(name),
        url=_clean_url(url),
        events=_clean_events(events),
        branch_id=branch.id if branch is not None else None,
        active=True,
        created_at=now,
        updated_at=now,
    )
    _set_secret(endpoint, secret)
    db.session.add(endpoint)
    db.session.flush()
    return endpoint, secret


def update_endpoint(
    endpoint: WebhookEndpoint, *, url, events, active: bool, now: datetime, name="", branch=None
) -> WebhookEndpoint:
    endpoint.name = _clean_name(name)
    endpoint.url = _clean_url(url)
    endpoint.events = _clean_events(events)
    endpoint.branch_id = branch.id if branch is not None else None
    endpoint.active = bool(active)
    endpoint.updated_at = now
    db.session.flush()
    return endpoint


def rotate_secret(endpoint: WebhookEndpoint, *, now: datetime) -> str:
    """A new secret for the endpoint (pending deliveries are signed with it). Flushes."""
    secret = new_secret()
    _set_secret(endpoint, secret)
    endpoint.updated_at = now
    db.session.flush()
    return secret


# --- writing deliveries ------------------------------------------------------------------------


def _settings():
    config = current_app.config
    return {
        "max_attempts": max(int(config.get("WEBHOOK_MAX_ATTEMPTS", 6)), 1),
        "base": float(config.get("WEBHOOK_RETRY_BASE_S", 60)),
        "factor": float(config.get("WEBHOOK_RETRY_FACTOR", 5)),
        "lease": float(config.get("WEBHOOK_LEASE_S", 120)),
        "timeout": float(config.get("WEBHOOK_TIMEOUT_S", 10)),
    }


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt (1, 5, 25, 125 ... min by default)."""
    s = _settings()
    return timedelta(seconds=s["base"] * s["factor"] ** max(attempts - 1, 0))


# --- the active endpoints, cached per process ----------------------------------------------------


@dataclass(frozen=True)
class ActiveEndpoint:
    """What `record` needs of an active endpoint: its id and what it wants. Plain values, never
    the ORM object (that belongs to one session; this is shared by every thread)."""

    id: int
    events: frozenset[str]
    branch_id: int | None

    def wants(self, event: str, branch_id: int | None) -> bool:
        return event in self.events and (self.branch_id is None or self.branch_id == branch_id)


@dataclass(frozen=True)
class _Snapshot:
    endpoints: tuple[ActiveEndpoint, ...]
    expires: float  # on the cache's clock


_CACHE_KEY = "queue_app.webhook_endpoints"
_CHANGED = "queue_app.webhook_endpoints_changed"  # session.info: the caches to invalidate


def _read_active(session: Session) -> tuple[ActiveEndpoint, ...]:
    rows = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.branch_id)
        .where(WebhookEndpoint.active.is_(True))
        .order_by(WebhookEndpoint.id)
    )
    return tuple(ActiveEndpoint(i, frozenset(events or ()), branch) for i, events, branch in rows)


class EndpointCache:
    """The active endpoints of one app, read at most once per `max_age` seconds (see the
    module's docstring). The snapshot is immutable and swapped whole; the lock only orders a
    read against an invalidation: a read that started before one (and may have seen the old
    rows) is returned to its caller but not kept."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._generation = 0

    def get(self, session: Session, max_age: float) -> tuple[ActiveEndpoint, ...]:
        if max_age <= 0 or session.info.get(_CHANGED):
            return _read_active(session)  # off, or this session changed endpoints: its own view
        now = self.clock()
        snapshot = self._snapshot
        if snapshot is not None and now < snapshot.expires:
            return snapshot.endpoints
        with self._lock:
            generation = self._generation
        endpoints = _read_active(session)
        with self._lock:
            if generation == self._generation:
                self._snapshot = _Snapshot(endpoints, now + max_age)
        return endpoints

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._snapshot = None


def endpoint_cache(app=None) -> EndpointCache:
    app = app if app is not None else current_app._get_current_object()
    cache = app.extensions.get(_CACHE_KEY)
    if cache is None:
        cache = app.extensions.setdefault(_CACHE_KEY, EndpointCache())
    return cache


def clear_cache(app=None) -> None:
    """Forget the app's active endpoints (tests: the database is emptied behind its back)."""
    endpoint_cache(app).invalidate()


def active_endpoints(session: Session) -> Sequence[ActiveEndpoint]:
    """The active endpoints, by id: from the cache while it is fresh (module's docstring)."""
    max_age = float(current_app.config.get("WEBHOOK_ENDPOINTS_CACHE_S", 2))
    return endpoint_cache().get(session, max_age)


@sa_event.listens_for(WebhookEndpoint, "after_insert")
@sa_event.listens_for(WebhookEndpoint, "after_update")
@sa_event.listens_for(WebhookEndpoint, "after_delete")
def _endpoint_written(_mapper, _connection, target) -> None:
    """Any write of an endpoint, by `services` or not: the session reads its own endpoints until
    its transaction ends, then the app's cache is invalidated (`_endpoints_settled`)."""
    session = object_session(target)
    if session is not None and has_app_context():
        session.info.setdefault(_CHANGED, set()).add(endpoint_cache())


@sa_event.listens_for(Session, "after_transaction_end")
def _endpoints_settled(session: Session, transaction) -> None:
    """Committed or rolled back (or closed), the change is now what every session sees: the
    next read of the cache reads it. A savepoint ending is not the end of the unit of work."""
    if transaction.parent is not None:
        return
    for cache in session.info.pop(_CHANGED, ()):
        cache.invalidate()


def endpoints_for(session: Session, event: str, branch_id: int | None) -> list[ActiveEndpoint]:
    return [e for e in active_endpoints(session) if e.wants(event, branch_id)]


def record(
    session: Session,
    event: str,
    *,
    branch_id: int | None,
    data: dict,
    now: datetime,
    endpoints: Sequence[ActiveEndpoint | WebhookEndpoint] | None = None,
) -> list[WebhookDelivery]:
    """Write the deliveries of `event` in the current unit of work (flushes, never commits)."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if endpoints is None:
        endpoints = endpoints_for(session, event, branch_id)
    else:
        endpoints = [e for e in endpoints if e.wants(event, branch_id)]
    if not endpoints:
        return []
    branch = session.get(Branch, branch_id) if branch_id is not None else None
    max_attempts = _settings()["max_attempts"]
    rows = []
    for endpoint in endpoints:
        uid = str(uuid.uuid4())
        payload = {
            "id": uid,
            "event": event,
            "occurred_at": iso(now),
            "branch": branch.code if branch is not None else None,
            "data": data,
        }
        rows.append(
            WebhookDelivery(
                uid=uid,
                endpoint_id=endpoint.id,
                event=event,
                branch_id=branch_id,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                max_attempts=max_attempts,
                next_try_at=now,
                created_at=now,
            )
        )
    session.add_all(rows)
    session.flush()
    return rows


# --- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    uid: str
    event: str
    url: str
    secret: str | None  # None: it cannot be read (`unreadable` says why), nothing is sent
    body: bytes
    attempts: int  # including this one
    max_attempts: int
    unreadable: str | None = None


def body_of(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def claim_due(*, now: datetime, limit: int = 50, ids=None) -> list[Claimed]:
    """Claim up to `limit` due deliveries and commit the claim (see the module's docstring)."""
    lease = _settings()["lease"]
    query = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_try_at <= now,
        )
        .order_by(WebhookDelivery.next_try_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
        .execution_options(populate_existing=True)
    )
    if ids is not None:
        query = query.where(WebhookDelivery.id.in_(list(ids)))
    rows = db.session.scalars(query).all()
    # read afresh, never from the session's identity map (objects outlive commits here): a
    # delivery written for an endpoint that has been turned off since (or by a process whose
    # cached list was a moment old) is not sent
    endpoints = {}
    if rows:
        endpoints = {
            e.id: e
            for e in db.session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.id.in_(sorted({row.endpoint_id for row in rows})))
                .execution_options(populate_existing=True)
            )
        }
    claimed = []
    for row in rows:
        endpoint = endpoints.get(row.endpoint_id)
        # turned off since: not sent (a replay can send it later)
        if endpoint is None or not endpoint.active:
            row.status = DeliveryStatus.FAILED
            row.last_error = "the webhook is turned off"
            continue
        row.attempts += 1
        row.last_attempt_at = now
        row.next_try_at = now + timedelta(seconds=lease)
        try:
            secret, unreadable = signing_secret(endpoint), None
        except sealing.Unreadable as exc:  # a failed attempt: retried, the key may come back
            secret, unreadable = None, f"the webhook's secret cannot be read: {exc}"
        claimed.append(
            Claimed(
                id=row.id,
                uid=row.uid,
                event=row.event,
                url=endpoint.url,
                secret=secret,
                body=body_of(row.payload),
                attempts=row.attempts,
                max_attempts=row.max_attempts,
                unreadable=unreadable,
            )
        )
    db.session.commit()
    return claimed


def headers_for(delivery: Claimed, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-QueueApp-Event": delivery.event,
        "X-QueueApp-Delivery": delivery.uid,
        "X-QueueApp-Timestamp": timestamp,
        "X-QueueApp-Signature": signing.signature(delivery.secret, timestamp, delivery.body),
    }


def send(delivery: Claimed, *, now: datetime, timeout: float) -> tuple[int | None, str | None]:
    """POST the delivery: (status code or None, error text or None when delivered).

    `http.client` directly: the headers go out spelled as documented, a redirect is an answer
    (not followed), HTTPS verifies the certificate (the default context). The connection goes
    to the address `destinations.connect_to` checked, under the URL's host name."""
    parts = urlsplit(delivery.url)
    https = parts.scheme == "https"
    connection_class = http.client.HTTPSConnection if https else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        port = parts.port or (443 if https else 80)
        address = destinations.connect_to(parts.hostname, port)
    except destinations.Refused as exc:
        return None, f"refused: {exc}"[:2000]
    except (OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    connection = connection_class(parts.hostname, port, timeout=timeout)
    # http.client's hook for opening the socket (an attribute of each connection): to the
    # address checked, never a second lookup of the name; TLS still checks the name
    connection._create_connection = lambda _to, wait, source: socket.create_connection(
        (address, port), wait, source
    )
    try:
        connection.request("POST", path, body=delivery.body, headers=headers_for(delivery, now))
        response = connection.getresponse()
        status = response.status
        response.read(1024)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        connection.close()
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}"


def _record(claimed: Claimed, values: dict) -> bool:
    result = db.session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claimed.id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.attempts == claimed.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def deliver_due(*, now: datetime, limit: int = 50, ids=None) -> dict:
    """Send the deliveries due at `now`; returns counts. Commits (see the module's docstring);
    call it outside any unit of work of the caller."""
    timeout = _settings()["timeout"]
    claimed = claim_due(now=now, limit=limit, ids=ids)
    counts = {"claimed": len(claimed), "delivered": 0, "retry": 0, "failed": 0}
    for delivery in claimed:
        try:
            if delivery.unreadable:
                status, error = None, delivery.unreadable
            else:
                status, error = send(delivery, now=now, timeout=timeout)
        except Exception as exc:  # a bug: a failed attempt like any other
            log.exception("webhook delivery %s failed", delivery.id)
            status, error = None, repr(exc)[:2000]
        if error is None:
            values = {
                "status": DeliveryStatus.DELIVERED,
                "delivered_at": now,
                "last_status_code": status,
                "last_error": None,
            }
            outcome = "delivered"
        elif delivery.attempts < delivery.max_attempts:
            values = {
                "last_status_code": status,
                "last_error": error,
                "next_try_at": now + retry_delay(delivery.attempts),
            }
            outcome = "retry"
        else:
            values = {
                "status": DeliveryStatus.FAILED,
                "last_status_code": status,
                "last_error": error,
                "next_try_at": now,
            }
            outcome = "failed"
        if outcome != "delivered":
            log.warning("webhook %s to %s: %s -> %s", delivery.uid, delivery.url, error, outcome)
        try:
            if _record(delivery, values):
                counts[outcome] += 1
        except Exception:
            db.session.rollback()  # the lease brings it back
            log.exception("webhook delivery %s: recording %s failed", delivery.id, outcome)
    return counts


def replay(delivery: WebhookDelivery, *, now: datetime) -> WebhookDelivery:
    """Put a failed delivery back: pending now, one more attempt, same payload and uid.
    Flushes; `Conflict` unless it is failed."""
    row = db.session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if row.status != DeliveryStatus.FAILED:
        raise Conflict("only a failed delivery can be sent again", "not_failed")
    row.status = DeliveryStatus.PENDING
    row.max_attempts = row.attempts + 1
    row.next_try_at = now
    row.replays += 1
    db.session.flush()
    return row
