"""One-time codes proving that a customer can be reached at a phone number or e-mail address.

Used by the virtual mobile queue (`tickets/remote.py`): the customer gives a contact, gets a
6-digit code there, and types it in to join. What is stored (`ContactVerification`, one row
per contact):

- the code only as a keyed hash (HMAC-SHA256 with the application's `SECRET_KEY`), compared
  in constant time; it expires after `REMOTE_CODE_TTL_S` and dies after
  `REMOTE_CODE_MAX_TRIES` wrong tries; a new code replaces the old one;
- how many codes the contact asked for in the current window (`REMOTE_CODES_PER_CONTACT` per
  `REMOTE_CODE_WINDOW_S`): more is refused with 429, whatever network address asks.

The row is created by an `INSERT ... ON CONFLICT DO NOTHING` and then locked (`SELECT ... FOR
UPDATE`; SQLite serializes write transactions anyway): everything done with one contact's code
happens one transaction at a time, which is what makes two phones joining with the same
contact at the same instant give one ticket.

A wrong code is an outcome that must be kept although the operation fails: `check_code`
counts it (flushed) and raises `CodeRejected`; the caller commits before answering (see
`CodeRejected`), otherwise the rollback would forget the try and the tries would be unlimited.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..core.db import is_postgres
from ..core.errors import DomainError, InvalidInput
from ..extensions import db
from .models import ContactVerification
from .services import normalise_phone

CODE_DIGITS = 6
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_CONTACT_LENGTH = 255


class TooManyRequests(DomainError):
    """The contact asked for too many codes: 429."""

    status = 429
    code = "too_many_requests"


class CodeRejected(InvalidInput):
    """The code is wrong. The wrong try was counted in the session: the caller COMMITS before
    it answers (`except CodeRejected: db.session.commit(); raise`), so the count is kept."""

    code = "wrong_code"


@dataclass(frozen=True)
class Contact:
    value: str  # E.164 phone number or lower-case e-mail address
    channel: str  # "sms" or "email"

    @property
    def is_phone(self) -> bool:
        return self.channel == "sms"

    @property
    def masked(self) -> str:
        """The contact as a page may show it back: `+62******7890`, `bu***@example.com`."""
        if self.is_phone:
            return self.value[:3] + "*" * max(len(self.value) - 7, 0) + self.value[-4:]
        name, _, domain = self.value.partition("@")
        return f"{name[:2]}***@{domain}"


def parse_contact(raw: str, *, region: str = "ID") -> Contact:
    """A phone number (as people write it, normalised to E.164) or an e-mail address."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_CONTACT_LENGTH or "\x00" in text:
        raise InvalidInput("give a phone number or an e-mail address", "invalid_contact")
    if "@" in text:
        if not EMAIL.match(text):
            raise InvalidInput(f"{text!r} is not an e-mail address", "invalid_email")
        return Contact(text.lower(), "email")
    return Contact(normalise_phone(text, region or "ID"), "sms")


def settings() -> dict:
    config = current_app.config
    return {
        "ttl_s": int(config.get("REMOTE_CODE_TTL_S", 600)),
        "max_tries": int(config.get("REMOTE_CODE_MAX_TRIES", 5)),
        "per_window": int(config.get("REMOTE_CODES_PER_CONTACT", 3)),
        "window_s": int(config.get("REMOTE_CODE_WINDOW_S", 900)),
    }


def code_hash(contact: str, code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"remote-code:{contact}:{code}".encode(), hashlib.sha256).hexdigest()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _locked(contact: str) -> ContactVerification | None:
    return db.session.scalar(
        select(ContactVerification)
        .where(ContactVerification.contact == contact)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def lock_or_create(contact: Contact, *, now: datetime) -> ContactVerification:
    """The contact's row, created if new, locked until the end of the transaction."""
    insert = pg_insert if is_postgres(db.session) else sqlite_insert
    db.session.execute(
        insert(ContactVerification)
        .values(
            contact=contact.value,
            channel=contact.channel,
            attempts=0,
            window_count=0,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[ContactVerification.contact])
    )
    return _locked(contact.value)


def issue_code(
    contact: Contact, *, branch_id: int, service_id: int, now: datetime
) -> tuple[ContactVerification, str]:
    """A new code for `contact` (replacing any earlier one); returns the row and the code
    itself, which is stored only hashed. TooManyRequests past the per-contact limit."""
    conf = settings()
    row = lock_or_create(contact, now=now)
    window = timedelta(seconds=conf["window_s"])
    if row.window_started_at is None or now - row.window_started_at >= window:
        row.window_started_at = now
        row.window_count = 0
    if row.window_count >= conf["per_window"]:
        wait_s = int((row.window_started_at + window - now).total_seconds()) + 1
        raise TooManyRequests(
            f"too many codes asked for this contact; try again in {wait_s // 60 + 1} min",
            "too_many_codes",
        )
    code = new_code()
    row.window_count += 1
    row.channel = contact.channel
    row.branch_id = branch_id
    row.service_id = service_id
    row.code_hash = code_hash(contact.value, code)
    row.expires_at = now + timedelta(seconds=conf["ttl_s"])
    row.attempts = 0
    db.session.flush()
    return row, code


def check_code(
    contact: Contact, code: str, *, branch_id: int, service_id: int, now: datetime
) -> ContactVerification:
    """Lock the contact's row and check `code`; the row stays locked until the commit.

    InvalidInput `no_code` (none asked for, or already used), `code_expired`,
    `too_many_tries` (the code is dead: ask for a new one), `code_other_queue` (asked for
    another branch or service); CodeRejected (`wrong_code`) for a wrong code, counted.
    """
    conf = settings()
    row = _locked(contact.value)
    if row is None or row.code_hash is None:
        raise InvalidInput("no code is waiting for this contact: ask for one", "no_code")
    if row.expires_at is None or now >= row.expires_at:
        raise InvalidInput("the code has expired: ask for a new one", "code_expired")
    if row.attempts >= conf["max_tries"]:
        raise InvalidInput("too many wrong codes: ask for a new one", "too_many_tries")
    if row.branch_id != branch_id or row.service_id != service_id:
        raise InvalidInput("this code was sent for another queue", "code_other_queue")
    given = re.sub(r"\s+", "", code or "")[:32]
    if not hmac.compare_digest(row.code_hash, code_hash(contact.value, given)):
        row.attempts += 1
        db.session.flush()
        left = conf["max_tries"] - row.attempts
        raise CodeRejected(
            f"wrong code; {left} tries left" if left > 0 else "wrong code; ask for a new one"
        )
    return row


def consume(row: ContactVerification, *, now: datetime) -> None:
    """The code has done its work: it cannot be used again."""
    row.code_hash = None
    row.expires_at = None
    row.attempts = 0
    row.verified_at = now
    db.session.flush()
