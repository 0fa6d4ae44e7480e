"""The outbox: `enqueue` writes a message in the caller's unit of work, `deliver_due` sends.

Delivery is at least once, with each step committed before the next one starts:

1. **Claim** (one short transaction): the due pending rows are selected
   `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite's `BEGIN IMMEDIATE` serializes the whole
   transaction), and each gets `attempts + 1` and a lease: `next_attempt_at = now +
   OUTBOX_LEASE_S`. Committed, the row is no longer due for any other process until the lease
   runs out. Their content is copied out first: sending touches no ORM object, so no database
   transaction (on SQLite: no write lock) is open while a mail server or gateway answers.
2. **Send**, outside any transaction.
3. **Record** (one transaction per message): `sent`, or the failure with its retry time, its
   next channel, or `failed`. The update only applies while the row is still the one claimed
   (same status, channel and attempts): a sender whose lease ran out does not overwrite the
   work of the process that took the message over.

A process that dies between 1 and 3 leaves the row pending with its lease: it is sent again
after the lease (never lost). One that dies between 2 and 3 after the message went out sends
it a second time; that window is as small as one commit, and the copies carry the same
`Message-ID` / `Idempotency-Key` (see `channels.py`).

Retries: after failed attempt n of a channel the next is `OUTBOX_RETRY_BASE_S *
OUTBOX_RETRY_FACTOR ** (n - 1)` later (1, 5, 25 minutes by default) until
`OUTBOX_MAX_ATTEMPTS` attempts; then, or at once after a permanent failure (a channel that is
not configured, a refused recipient), the next entry of `fallbacks` takes over with a fresh
count; when none is left the message is `failed`.

Urgent messages (`enqueue(..., urgent=True)`: a one-time code, "it is your turn") do not wait
for the next `deliver_outbox` run: `enqueue` publishes `outbox.urgent` (`core.events.publish`,
so only once the unit of work has committed, never for one that rolled back), and its receiver
hands the ids to the app's `UrgentSender`, which claims them through the same claim and lease
as `deliver_due` (`deliver_now`): whichever of the two claims a message first sends it, the
other finds it leased. The sender works in its own application context and session, in a
background thread (`NOTIFY_URGENT = "thread"`, the default: the request that wrote the message
does not wait); `"sync"` sends in the committing thread right after the commit (the testing
profile: deterministic tests), `"off"` leaves urgent messages to the job. An urgent message
whose channel fails moves to its next channel at once instead of retrying the failed one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..core.events import publish, signal
from ..core.types import utcnow
from ..extensions import db
from . import channels
from .models import Channel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)


URGENT = "outbox.urgent"


def channel_chain(*, phone: str | None, email: str | None) -> list[tuple[Channel, str]]:
    """The channels to reach a customer by, in order: the first is tried, the others are its
    fallbacks. WhatsApp then SMS (each only if configured), then e-mail. A phone number with
    neither configured and no e-mail still gets the SMS: it fails at once as "not configured",
    which the outbox keeps as the record of why nothing went out."""
    chain: list[tuple[Channel, str]] = []
    if phone:
        chain += [(c, phone) for c in (Channel.WHATSAPP, Channel.SMS) if channels.configured(c)]
    if email:
        chain.append((Channel.EMAIL, email))
    if not chain and phone:
        chain.append((Channel.SMS, phone))
    return chain


def enqueue(
    kind: str,
    *,
    channel: Channel | str,
    recipient: str,
    subject: str | None,
    body: str,
    html: str | None = None,
    attachments=(),
    fallbacks=(),
    locale: str,
    dedupe_key: str | None = None,
    now: datetime,
    urgent: bool = False,
    not_before: datetime | None = None,
) -> OutboxMessage | None:
    """Add a message to the outbox in the current unit of work (flushes, never commits).

    A message whose `dedupe_key` is already in the outbox is not written again: returns None.
    The key is claimed by the insert itself (`ON CONFLICT DO NOTHING`), in one statement and
    without a savepoint, so two processes writing the same key at once write it once, and the
    caller's unit of work goes on either way.

    `urgent`: delivered right after the commit (see the module's docstring), not at the next
    run of the outbox job; the job still sends it if the urgent sender could not.
    `not_before`: the first attempt waits until then (a rating invitation, after a delay).
    """
    values = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "channel": Channel(channel),
        "recipient": recipient,
        "fallbacks": [
            {"channel": Channel(f["channel"]).value, "recipient": f["recipient"]} for f in fallbacks
        ],
        "locale": locale,
        "subject": subject,
        "body": body,
        "html": html,
        "attachments": [dict(a) for a in attachments],
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": max(now, not_before) if not_before is not None else now,
        "created_at": now,
    }
    if dedupe_key is None:
        message = OutboxMessage(**values)
        db.session.add(message)
        db.session.flush()
    else:
        dialect = db.session.get_bind(OutboxMessage.__mapper__).dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        message = db.session.scalars(
            insert(OutboxMessage)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[OutboxMessage.dedupe_key])
            .returning(OutboxMessage)
        ).first()
        if message is None:
            return None
    if urgent:
        publish(db.session, URGENT, ids=[message.id], now=now)
    return message


@dataclass(frozen=True)
class Claimed:
    """What is needed to send one claimed message, detached from the session."""

    id: int
    kind: str
    channel: str
    recipient: str
    fallbacks: list
    locale: str
    subject: str | None
    body: str
    html: str | None
    attachments: list
    attempts: int  # including this one


def _settings():
    config = current_app.config
    return (
        int(config.get("OUTBOX_MAX_ATTEMPTS", 4)),
        float(config.get("OUTBOX_RETRY_BASE_S", 60)),
        float(config.get("OUTBOX_RETRY_FACTOR", 5)),
        float(config.get("OUTBOX_LEASE_S", 300)),
    )


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt of a channel (1, 5, 25 min ...)."""
    _max, base, factor, _lease = _settings()
    return timedelta(seconds=base * factor ** max(attempts - 1, 0))


def claim_due(*, now: datetime, limit: int = 100) -> list[Claimed]:
    """Claim up to `limit` due messages and commit the claim (see the module's docstring)."""
    return _claim(now=now, limit=limit)


def _claim(*, now: datetime, limit: int, ids=None) -> list[Claimed]:
    """Claim the due pending messages (only those of `ids` if given) and commit the claim."""
    _max, _base, _factor, lease = _settings()
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    rows = db.session.scalars(query).all()
    claimed = []
    for row in rows:
        row.attempts += 1
        row.next_attempt_at = now + timedelta(seconds=lease)
        claimed.append(
            Claimed(
                id=row.id,
                kind=row.kind,
                channel=Channel(row.channel).value,
                recipient=row.recipient,
                fallbacks=list(row.fallbacks or ()),
                locale=row.locale,
                subject=row.subject,
                body=row.body,
                html=row.html,
                attachments=list(row.attachments or ()),
                attempts=row.attempts,
            )
        )
    db.session.commit()
    return claimed


def _record(message: Claimed, values: dict) -> bool:
    """Write the outcome if the row is still as claimed; commits. False: someone took over."""
    result = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message.id,
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.channel == Channel(message.channel),
            OutboxMessage.attempts == message.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _after_failure(
    message: Claimed, error: channels.ChannelError, now: datetime, *, urgent: bool = False
) -> dict:
    max_attempts, *_ = _settings()
    text = f"{message.channel} attempt {message.attempts}: {error}"[:2000]
    retry = not error.permanent and message.attempts < max_attempts
    if retry and not (urgent and message.fallbacks):  # urgent: the next channel at once
        return {
            "last_error": text,
            "next_attempt_at": now + retry_delay(message.attempts),
            "status": OutboxStatus.PENDING,
        }
    if message.fallbacks:
        following, *rest = message.fallbacks
        return {
            "last_error": text,
            "channel": Channel(following["channel"]),
            "recipient": following["recipient"],
            "fallbacks": rest,
            "attempts": 0,
            "next_attempt_at": now,
            "status": OutboxStatus.PENDING,
        }
    return {"last_error": text, "status": OutboxStatus.FAILED, "next_attempt_at": now}


def deliver_due(*, now: datetime, limit: int = 100) -> dict:
    """Send the messages due at `now` (at most `limit`); returns the counts of what happened.

    Commits: the claim before anything is sent, then each outcome on its own (see the module's
    docstring). Call it outside any unit of work of the caller.
    """
    claimed = claim_due(now=now, limit=limit)
    counts = {"claimed": len(claimed), "sent": 0, "retry": 0, "fallback": 0, "failed": 0}
    _send_claimed(claimed, now, counts)
    return counts


def deliver_now(ids, *, now: datetime) -> dict:
    """Send the messages `ids` if they are still due (the urgent path; same claim and lease as
    `deliver_due`, so a message another sender claimed is left to it). A failed channel hands
    over to the next at once, which is tried in the same call. Commits like `deliver_due`."""
    counts = {"claimed": 0, "sent": 0, "retry": 0, "fallback": 0, "failed": 0}
    ids = list(ids)
    for _channel in range(len(Channel) + 1):  # one pass per channel of a message's chain
        claimed = _claim(now=now, limit=len(ids), ids=ids)
        if not claimed:
            break
        counts["claimed"] += len(claimed)
        _send_claimed(claimed, now, counts, urgent=True)
    return counts


def _send_claimed(claimed: list[Claimed], now: datetime, counts: dict, *, urgent=False) -> None:
    for message in claimed:
        try:
            channels.send(message)
        except channels.ChannelError as exc:
            values = _after_failure(message, exc, now, urgent=urgent)
            outcome = (
                "failed"
                if values["status"] == OutboxStatus.FAILED
                else "fallback"
                if "channel" in values
                else "retry"
            )
            log.warning("outbox %s (%s): %s -> %s", message.id, message.kind, exc, outcome)
        except Exception as exc:  # a bug or an unexpected error: retried like a failure
            log.exception("outbox %s (%s): sending failed", message.id, message.kind)
            values = _after_failure(message, channels.ChannelError(repr(exc)), now)
            outcome = "failed" if values["status"] == OutboxStatus.FAILED else "retry"
        else:
            values = {"status": OutboxStatus.SENT, "sent_at": now, "last_error": None}
            outcome = "sent"
        try:
            if _record(message, values):
                counts[outcome] += 1
        except Exception:
            # the outcome could not be written: the lease brings the message back later
            db.session.rollback()
            log.exception("outbox %s: recording %s failed", message.id, outcome)


# --- urgent delivery -------------------------------------------------------------------------


class UrgentSender:
    """Sends urgent messages of one app after their commit (see the module's docstring).

    One daemon thread per process, started at the first message (so after a fork: gunicorn's
    workers each start their own), fed through a queue; every batch is sent in a fresh
    application context, hence its own database session. `wait_idle()` lets a test (or a
    shutdown) wait until everything handed over so far was tried.
    """

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def submit(self, ids, now: datetime) -> None:
        mode = str(self.app.config.get("NOTIFY_URGENT", "thread")).lower()
        if mode == "off" or not ids:
            return
        if mode == "sync":
            self.send(ids, now)
            return
        self._ensure_thread().put((list(ids), now))

    def send(self, ids, now: datetime) -> dict | None:
        """Deliver `ids` now, in this thread, in an application context of its own."""
        with self.app.app_context():
            try:
                # `now` of the unit of work that wrote them: they are due from then on
                return deliver_now(ids, now=max(utcnow(), now))
            except Exception:
                db.session.rollback()
                # left pending (or leased): the outbox job sends them
                log.exception("urgent delivery of outbox %s failed", ids)
                return None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every message handed over so far was tried; False after `timeout` s."""
        work = self._queue
        if work is None:
            return True
        with work.all_tasks_done:
            return work.all_tasks_done.wait_for(lambda: work.unfinished_tasks == 0, timeout)

    def _ensure_thread(self) -> queue.Queue:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._queue = queue.Queue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="outbox-urgent", daemon=True
                )
                self._thread.start()
            return self._queue

    def _run(self, work: queue.Queue) -> None:
        while True:
            ids, now = work.get()
            try:
                self.send(ids, now)
            finally:
                work.task_done()


def urgent_sender(app) -> UrgentSender:
    return app.extensions["queue_app.urgent_sender"]


def init_urgent_delivery(app) -> None:
    """Give `app` its urgent sender and connect the after-commit receiver (once)."""
    app.extensions.setdefault("queue_app.urgent_sender", UrgentSender(app))
    signal(URGENT).connect(_on_urgent)


def _on_urgent(_sender, *, ids, now, **_payload) -> None:
    app = current_app._get_current_object()
    sender = app.extensions.get("queue_app.urgent_sender")
    if sender is not None:
        sender.submit(ids, now)
