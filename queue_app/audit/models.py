"""One audit entry per staff or admin action (see the package's docstring)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..core.types import UTCDateTime, utcnow
from ..extensions import db

# how the action came in
VIA_PAGE = "page"
VIA_API = "api"
VIA_CLI = "cli"
VIA_SOCKET = "socket"
VIA_JOB = "job"  # a scheduled job acting on its own (the retention job)
VIAS = (VIA_PAGE, VIA_API, VIA_CLI, VIA_SOCKET, VIA_JOB)

# what became of it
OK = "ok"
REFUSED = "refused"  # 401/403: the actor may not do this
FAILED = "failed"  # a 4xx answer (bad input, conflict): nothing changed
OUTCOMES = (OK, REFUSED, FAILED)


class AuditEntry(db.Model):
    """Append-only: never changed, and deleted only by the retention job once older than
    `AUDIT_RETENTION_DAYS` (`services.purge`). The actor's username and role are copied in,
    so an entry still says who it was after the account is deleted (`actor_id` is then set to
    NULL). No secrets and no customer's personal data go into `details`."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_at", "at"),
        Index("ix_audit_entries_actor_at", "actor_id", "at"),
        Index("ix_audit_entries_branch_at", "branch_id", "at"),
        Index("ix_audit_entries_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_username: Mapped[str | None] = mapped_column(String(64))  # None: the system
    actor_role: Mapped[str | None] = mapped_column(String(20))
    via: Mapped[str] = mapped_column(String(8))  # page, api, cli, socket, job
    # a stable verb ("ticket.call_next", "customer.erase") or the endpoint's name
    action: Mapped[str] = mapped_column(String(80))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(255))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64))
    # no foreign key: the entry outlives the branch
    branch_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))  # truncated: /24 (IPv4), /48 (IPv6)
    status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status answered
    outcome: Mapped[str] = mapped_column(String(8), default=OK)
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    def __repr__(self):
        return f"<AuditEntry {self.id} {self.action} {self.outcome}>"
