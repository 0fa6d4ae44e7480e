"""Writing audit entries.

`record(...)` adds one entry to a session: the caller's unit of work, so the entry commits or
rolls back with the action it describes. The request hooks (`hooks.py`) call it for every
mutating request of a member of staff; CLI commands call it themselves (`via="cli"`).
"""

from __future__ import annotations

import getpass
import ipaddress
from datetime import datetime, timedelta

from flask import g, has_request_context, request
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..core.types import utcnow
from ..extensions import db
from .models import OK, VIA_CLI, VIA_JOB, VIAS, AuditEntry

# form and JSON fields whose values may be kept in `details` (short codes, never free text,
# secrets or a customer's personal data); of every other field only the name is kept
SAFE_FIELDS = frozenset(
    {
        "action",
        "channel",
        "counter",
        "department",
        "enabled",
        "kind",
        "level",
        "metric",
        "outcome",
        "outcome_code",
        "priority",
        "reached",
        "reason",
        "role",
        "root_cause",
        "service",
        "status",
        "to_counter",
        "to_service",
        "to_user",
    }
)
# field names never even listed
HIDDEN_FIELDS = frozenset({"csrf_token", "password", "token", "secret"})
VALUE_MAX = 40


def truncate_ip(address: str | None) -> str | None:
    """The network, not the host: 203.0.113.0/24 of an IPv4 address, the /48 of an IPv6 one
    (enough to tell an office from a stranger, not to single out a person)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def request_id() -> str | None:
    if not has_request_context():
        return None
    rid = g.get("request_id") or request.headers.get("X-Request-ID")
    return str(rid)[:64] if rid else None


def field_details(values) -> dict:
    """The names of the fields sent, and the values of the safe ones."""
    if not values:
        return {}
    names = sorted(str(k) for k in values if str(k).lower() not in HIDDEN_FIELDS)
    kept = {}
    for name in names:
        if name in SAFE_FIELDS:
            value = values.get(name)
            if isinstance(value, str | int | float | bool) or value is None:
                kept[name] = value if not isinstance(value, str) else value[:VALUE_MAX]
    out: dict = {"fields": names[:30]}
    if kept:
        out["values"] = kept
    return out


def cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except Exception:  # no login name (a container without a passwd entry)
        return "cli"


def record(
    action: str,
    *,
    via: str,
    actor=None,
    actor_username: str | None = None,
    target_type: str | None = None,
    target_id=None,
    branch_id: int | None = None,
    outcome: str = OK,
    status: int | None = None,
    details: dict | None = None,
    now: datetime | None = None,
    session: Session | None = None,
) -> AuditEntry:
    """Add one audit entry to `session` (default: the application's) and return it.

    `actor` is a `User` (its id, username and role are copied) or None (the system, or a CLI
    command: `actor_username` then says who ran it). In a request the method, path, request
    id and the client's truncated address are filled in."""
    if via not in VIAS:
        raise ValueError(f"unknown via {via!r}")
    session = session if session is not None else db.session
    entry = AuditEntry(
        at=now or utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_username=(getattr(actor, "username", None) or actor_username),
        actor_role=(getattr(getattr(actor, "role", None), "value", None)),
        via=via,
        action=action[:80],
        target_type=target_type,
        target_id=str(target_id)[:64] if target_id is not None else None,
        branch_id=branch_id,
        outcome=outcome,
        status=status,
        details=details or {},
    )
    if via == VIA_CLI and entry.actor_username is None:
        entry.actor_username = cli_actor()
    if has_request_context() and via != VIA_CLI:
        entry.method = request.method[:8]
        entry.path = request.path[:255]
        entry.request_id = request_id()
        entry.ip = truncate_ip(request.remote_addr)
    session.add(entry)
    return entry


def _older_than(now: datetime, days: int):
    """The entries `purge` deletes: older than `days` days before `now`."""
    if days < 1:
        raise ValueError("keep at least one day")
    return AuditEntry.at < now - timedelta(days=days)


def count_purgeable(*, now: datetime, days: int) -> int:
    """How many entries `purge` would delete (`flask audit purge --dry-run`)."""
    return db.session.scalar(select(func.count()).where(_older_than(now, days)))


def purge(
    *,
    now: datetime,
    days: int,
    batch_size: int = 5000,
    via: str = VIA_JOB,
    actor_username: str | None = "job:purge_audit_log",
) -> int:
    """Delete the entries older than `days` days before `now` (`AUDIT_RETENTION_DAYS`), oldest
    first, `batch_size` per transaction (each committed: a long purge never holds one big
    transaction), and record the purge itself in the log. Returns the entries deleted."""
    older = _older_than(now, days)
    deleted = 0
    while True:
        ids = select(AuditEntry.id).where(older).order_by(AuditEntry.id)
        batch = db.session.scalars(ids.limit(batch_size)).all()
        if not batch:
            break
        db.session.execute(
            delete(AuditEntry)
            .where(AuditEntry.id.in_(batch))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        deleted += len(batch)
    if deleted:
        record(
            "audit.purge",
            via=via,
            actor_username=actor_username if via == VIA_JOB else None,
            details={"older_than_days": days, "deleted": deleted},
            now=now,
        )
        db.session.commit()
    return deleted
