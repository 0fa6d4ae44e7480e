from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..branches.models import Branch, Service, str_enum
from ..core.types import UTCDateTime, utcnow
from ..extensions import db


class Role(enum.StrEnum):
    STAFF = "staff"
    BRANCH_MANAGER = "branch_manager"
    CX_AGENT = "cx_agent"
    ADMIN = "admin"
    EXECUTIVE = "executive"


# roles that see every branch of the network
NETWORK_ROLES = {Role.ADMIN, Role.EXECUTIVE}
# roles that work the floor: open counters, call and serve tickets
FLOOR_ROLES = {Role.STAFF, Role.BRANCH_MANAGER, Role.ADMIN}
# roles that see feedback, metrics and cases (a branch manager: of their branches)
CX_ROLES = {Role.CX_AGENT, Role.BRANCH_MANAGER, Role.EXECUTIVE, Role.ADMIN}

user_branches = Table(
    "user_branches",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("branch_id", ForeignKey("branches.id", ondelete="CASCADE"), primary_key=True),
)

user_services = Table(
    "user_services",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"), default=Role.STAFF)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # sign-in lock-out: consecutive failures, and until when the account refuses passwords
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # bumped on logout-everywhere, password or role change: sessions and sockets carrying an
    # older value are no longer valid
    session_version: Mapped[int] = mapped_column(Integer, default=1)

    manager: Mapped[User | None] = relationship(remote_side=[id])
    branches: Mapped[list[Branch]] = relationship(secondary=user_branches, order_by=Branch.code)
    competences: Mapped[list[Service]] = relationship(secondary=user_services)

    # Flask-Login: the session remembers "id:session_version", so bumping the version signs the
    # user out everywhere
    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self) -> bool:
        return self.active

    def sees_all_branches(self) -> bool:
        return self.role in NETWORK_ROLES

    def belongs_to(self, branch: Branch) -> bool:
        return self.sees_all_branches() or any(b.id == branch.id for b in self.branches)

    def can_view(self, branch: Branch) -> bool:
        return self.active and self.belongs_to(branch)

    def can_work_floor(self, branch: Branch) -> bool:
        return self.active and self.role in FLOOR_ROLES and self.belongs_to(branch)

    @property
    def stands_in_for_anyone(self) -> bool:
        """Admins and managers may serve every service, whatever their competences."""
        return self.role in {Role.ADMIN, Role.BRANCH_MANAGER}

    def is_competent(self, service: Service) -> bool:
        if self.stands_in_for_anyone:
            return True
        return any(s.id == service.id for s in self.competences)

    def __repr__(self):
        return f"<User {self.username} {self.role}>"


class ApiToken(db.Model):
    """A bearer token for the API. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # what the token may be used for (accounts/scopes.py); the user's role still applies
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)

    user: Mapped[User] = relationship()

    def allows(self, scope: str) -> bool:
        return scope in (self.scopes or ())
