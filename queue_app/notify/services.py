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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from . import channels
from .models import Channel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)


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
) -> OutboxMessage | None:
    """Add a message to the outbox in the current unit of work (flushes, never commits).

    A message whose `dedupe_key` is already in the outbox is not written again: returns None.
    """
    if dedupe_key is not None:
        existing = db.session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return None
    message = OutboxMessage(
        kind=kind,
        dedupe_key=dedupe_key,
        channel=Channel(channel),
        recipient=recipient,
        fallbacks=[
            {"channel": Channel(f["channel"]).value, "recipient": f["recipient"]} for f in fallbacks
        ],
        locale=locale,
        subject=subject,
        body=body,
        html=html,
        attachments=[dict(a) for a in attachments],
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    if dedupe_key is None:
        db.session.add(message)
        db.session.flush()
        return message
    try:
        # another process wrote the same key since the check above (PostgreSQL): keep the
        # unit of work, drop only this message
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        return None
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
    _max, _base, _factor, lease = _settings()
    rows = db.session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
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


def _after_failure(message: Claimed, error: channels.ChannelError, now: datetime) -> dict:
    max_attempts, *_ = _settings()
    text = f"{message.channel} attempt {message.attempts}: {error}"[:2000]
    if not error.permanent and message.attempts < max_attempts:
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
    for message in claimed:
        try:
            channels.send(message)
        except channels.ChannelError as exc:
            values = _after_failure(message, exc, now)
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
    return counts
