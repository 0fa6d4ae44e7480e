"""Creating accounts and API tokens, and checking them."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from ..branches.models import Branch, Service
from ..core.errors import Conflict, InvalidInput
from ..extensions import db
from .models import ApiToken, Role, User

_hasher = PasswordHasher()
TOKEN_PREFIX = "qa_"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(
    username: str,
    *,
    role: Role,
    password: str,
    display_name: str | None = None,
    branches: list[Branch] = (),
    services: list[Service] | None = None,
    manager: User | None = None,
    email: str | None = None,
    locale: str | None = None,
) -> User:
    """A new account. Staff are competent in all services of their branches unless told."""
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("a username is 1 to 64 characters", "bad_username")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists already", "user_exists")
    if len(password) < 8:
        raise InvalidInput("a password has at least 8 characters", "weak_password")
    if role not in {Role.ADMIN, Role.EXECUTIVE} and not branches:
        raise InvalidInput(f"a {role.value} belongs to at least one branch", "missing_branch")
    if services is None:
        services = [s for b in branches for s in b.services]
    branch_ids = {b.id for b in branches}
    foreign = [s.code for s in services if s.branch_id not in branch_ids]
    if foreign:
        raise InvalidInput(
            f"services outside the user's branches: {', '.join(foreign)}", "bad_service"
        )
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        password_hash=hash_password(password),
        branches=list(branches),
        competences=list(services),
        manager=manager,
        email=email,
        locale=locale,
    )
    db.session.add(user)
    db.session.flush()
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, *, name: str = "", now: datetime) -> str:
    """A new bearer token for `user`. The token itself is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=_digest(token), name=name, created_at=now))
    db.session.flush()
    return token


def user_for_token(token: str) -> User | None:
    """The active user behind a bearer token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == _digest(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.user.active:
        return None
    return row.user


def revoke_api_token(token: str, *, now: datetime) -> bool:
    row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True
