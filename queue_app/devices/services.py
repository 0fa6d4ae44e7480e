"""Registering, pairing and revoking kiosks, lobby displays and feedback tablets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from ..accounts.models import Role, User
from ..branches.models import Branch, Counter
from ..core.errors import InvalidInput, NotAllowed, NotFound
from ..core.events import publish
from ..extensions import db
from .models import Device, DeviceKind

PAIRING_TTL = timedelta(minutes=30)
# no 0/O, 1/I/L: the code is read off a screen and typed by a person
PAIRING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PAIRING_LENGTH = 6
TOKEN_PREFIX = "qd_"  # the prefix that marks a device token, not a secret  # nosec B105
# a device's last page load or status poll is written at most this often
SEEN_EVERY = timedelta(minutes=1)
# pending devices that nobody paired stay listed for admins this long after they were last seen
PENDING_LISTED = timedelta(days=7)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_pairing_code() -> str:
    """A code no other device shows (the column is unique; a clash is retried, not a 500)."""
    for _ in range(10):
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_LENGTH))
        if db.session.scalar(select(Device.id).where(Device.pairing_code == code)) is None:
            return code
    raise RuntimeError("no free pairing code after 10 tries")


def normalise_code(code: str | None) -> str:
    """What a person typed, as stored: upper case, without spaces and dashes."""
    return "".join((code or "").split()).replace("-", "").upper()


def format_code(code: str | None) -> str:
    """The code as shown on screen, in two groups of three: `K7M Q2P`."""
    code = code or ""
    half = len(code) // 2
    return f"{code[:half]} {code[half:]}" if len(code) >= 6 else code


class DeviceState:
    PENDING = "pending"
    EXPIRED = "expired"
    PAIRED = "paired"
    REVOKED = "revoked"


def device_state(device: Device, now: datetime) -> str:
    """pending (code valid), expired (code ran out, nobody paired it), paired or revoked."""
    if device.revoked_at is not None:
        return DeviceState.REVOKED
    if device.is_paired:
        return DeviceState.PAIRED
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        return DeviceState.EXPIRED
    return DeviceState.PENDING


def touch_device(device: Device, *, now: datetime) -> bool:
    """Record that the device is alive; writes at most once per `SEEN_EVERY`.

    Returns whether anything changed (the caller commits then)."""
    if device.last_seen_at is not None and now - device.last_seen_at < SEEN_EVERY:
        return False
    device.last_seen_at = now
    return True


def register_device(kind: DeviceKind, *, now: datetime) -> tuple[Device, str]:
    """A new, unpaired device: returns it and its secret token (shown once, kept by the device)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = Device(
        kind=kind,
        token_hash=digest(token),
        pairing_code=_new_pairing_code(),
        pairing_expires_at=now + PAIRING_TTL,
        settings={},
        created_at=now,
    )
    db.session.add(device)
    db.session.flush()
    return device, token


def renew_pairing_code(device: Device, *, now: datetime) -> Device:
    """A fresh code for a device still waiting to be paired (the old one expired)."""
    if device.paired_at is not None and device.revoked_at is None:
        raise InvalidInput("the device is paired already", "already_paired")
    device.pairing_code = _new_pairing_code()
    device.pairing_expires_at = now + PAIRING_TTL
    return device


def can_manage_devices(actor: User, branch: Branch) -> bool:
    return actor.active and (
        actor.role == Role.ADMIN or (actor.role == Role.BRANCH_MANAGER and actor.belongs_to(branch))
    )


def manageable_branches(actor: User) -> list[Branch]:
    """The active branches whose devices `actor` pairs and revokes."""
    if not actor.active:
        return []
    if actor.role == Role.ADMIN:
        return list(
            db.session.scalars(select(Branch).where(Branch.active.is_(True)).order_by(Branch.code))
        )
    if actor.role == Role.BRANCH_MANAGER:
        return [b for b in actor.branches if b.active]
    return []


def devices_for(actor: User, *, now: datetime) -> list[Device]:
    """The devices `actor` may see on the admin page: those of the branches they manage, and
    for admins also devices nobody has paired yet (seen within `PENDING_LISTED`)."""
    branch_ids = [b.id for b in manageable_branches(actor)]
    conditions = [Device.branch_id.in_(branch_ids)] if branch_ids else []
    if actor.active and actor.role == Role.ADMIN:
        conditions.append(
            (Device.branch_id.is_(None))
            & Device.revoked_at.is_(None)
            & (func.coalesce(Device.last_seen_at, Device.created_at) >= now - PENDING_LISTED)
        )
    if not conditions:
        return []
    rows = db.session.scalars(
        select(Device).where(or_(*conditions)).order_by(Device.created_at.desc()).limit(500)
    ).all()
    order = {DeviceState.PAIRED: 0, DeviceState.PENDING: 1, DeviceState.EXPIRED: 2}
    return sorted(
        rows,
        key=lambda d: (
            order.get(device_state(d, now), 3),
            d.branch.code if d.branch else "",
            d.kind.value,
            d.name.lower(),
        ),
    )


def pair_device(
    code: str,
    branch: Branch,
    actor: User,
    *,
    name: str,
    now: datetime,
    counter_id: int | None = None,
) -> Device:
    """Pair the device showing `code` with `branch`.

    A feedback tablet is also paired with one counter of that branch (`counter_id`, required
    for that kind); other kinds ignore it."""
    if not can_manage_devices(actor, branch):
        raise NotAllowed("only an admin or the branch's manager pairs its devices")
    code = normalise_code(code)
    name = " ".join((name or "").split())
    if not name or len(name) > 80:
        raise InvalidInput("a device name is 1 to 80 characters", "bad_name")
    if len(code) != PAIRING_LENGTH or any(c not in PAIRING_ALPHABET for c in code):
        raise InvalidInput(f"a pairing code is {PAIRING_LENGTH} letters and digits", "bad_code")
    device = db.session.scalar(select(Device).where(Device.pairing_code == code))
    if device is None or device.revoked_at is not None:
        raise NotFound("no device shows this pairing code", "unknown_pairing_code")
    if device.is_paired:
        raise InvalidInput("the device is paired already", "already_paired")
    if device.pairing_expires_at is None or device.pairing_expires_at <= now:
        raise InvalidInput("this pairing code has expired; the device shows a new one", "expired")
    counter = None
    if device.kind == DeviceKind.FEEDBACK:
        if counter_id is None:
            raise InvalidInput("a feedback tablet is paired with a counter", "counter_required")
        counter = db.session.get(Counter, counter_id)
        if counter is None or counter.branch_id != branch.id:
            raise InvalidInput("that counter is not a counter of the branch", "wrong_counter")
    device.branch = branch
    device.counter = counter
    device.name = name
    device.paired_at = now
    device.paired_by = actor
    device.pairing_code = None
    device.pairing_expires_at = None
    db.session.flush()
    publish(
        db.session,
        "device.paired",
        device_id=device.id,
        kind=device.kind.value,
        branch_id=branch.id,
    )
    return device


def revoke_device(device: Device, actor: User, *, now: datetime) -> Device:
    if device.branch is not None and not can_manage_devices(actor, device.branch):
        raise NotAllowed("only an admin or the branch's manager revokes its devices")
    if device.branch is None and actor.role != Role.ADMIN:
        raise NotAllowed("only an admin revokes unpaired devices")
    if device.revoked_at is None:
        device.revoked_at = now
        device.pairing_code = None
        device.pairing_expires_at = None
        db.session.flush()
        # the realtime layer closes the device's sockets once this is committed
        publish(
            db.session,
            "device.revoked",
            device_id=device.id,
            kind=device.kind.value,
            branch_id=device.branch_id,
        )
    return device


def device_for_token(token: str | None) -> Device | None:
    """The device behind a token, paired or pending; None for unknown or revoked tokens. With
    its branch in the same statement: every device page speaks the branch's language."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    device = db.session.scalar(
        select(Device).options(joinedload(Device.branch)).where(Device.token_hash == digest(token))
    )
    if device is None or device.revoked_at is not None:
        return None
    return device
