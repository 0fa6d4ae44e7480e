"""The `/floor` namespace: who a connection is decides its one room; clients never pick rooms.

| who connects | how the server knows | room |
| --- | --- | --- |
| a paired lobby display | device cookie `qa_device_display` | `display:<branch id>` |
| a paired kiosk | its device cookie `qa_device_kiosk` | `kiosk:<branch id>` |
| a feedback tablet | device cookie `qa_device_feedback` | `feedback:<branch id>:<counter id>` |
| signed-in staff | session cookie + auth `{"branch": code}` | `staff:<branch id>` |
| a customer's phone | auth `{"ticket": visit token}` | `ticket:<ticket id>` |

A phone also joins `phones:<branch id>` and a tablet `tablets:<branch id>`: never sent to, they
tell the pusher whether anyone of the branch listens in this process (`pushes.py`).

Anything else is refused with a reason. The only client event is `snapshot` (with an ack),
rate-limited per connection; every event re-checks that the connection is still allowed
(a revoked device, a signed-out or changed account is disconnected). Connections also join
rooms naming who they are (`user:<id>`, `browser:<user id>:<key>`, `device:<id>`): sign-out,
account changes and revokes disconnect them at once, in every process (`disconnects.py`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from flask import request, session
from flask_login import current_user
from flask_socketio import ConnectionRefusedError, Namespace, disconnect, emit, join_room

from ..accounts.models import User
from ..branches.models import Branch
from ..devices.models import Device, DeviceKind
from ..devices.services import device_for_token
from ..devices.web import cookie_name
from ..extensions import db
from ..tickets.queries import ticket_by_token
from . import dashboard, payloads
from .disconnects import browser_key, browser_room, device_room, user_room
from .pushes import phones_room, tablets_room

SNAPSHOT_BURST = 5  # snapshot requests a connection may make at once
SNAPSHOT_REFILL_S = 2.0  # ... and then one per this many seconds


@dataclass
class Connection:
    audience: str
    branch_id: int
    room: str
    ticket_id: int | None = None
    device_id: int | None = None
    user_id: int | None = None
    session_version: int | None = None
    browser: str | None = None  # staff: `disconnects.browser_key` of the session cookie
    # dashboard: more branch rooms (`dashboard.py`); phone, feedback tablet: the branch's
    # `phones_room`, `tablets_room`
    extra_rooms: tuple[str, ...] = ()
    tokens: float = SNAPSHOT_BURST
    refilled: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(SNAPSHOT_BURST, self.tokens + (now - self.refilled) / SNAPSHOT_REFILL_S)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FloorNamespace(Namespace):
    def __init__(self, namespace):
        super().__init__(namespace)
        self.connections: dict[str, Connection] = {}
        self.lock = threading.Lock()

    # --- who is it ---------------------------------------------------------------------------

    def _identify(self, auth) -> Connection:
        auth = auth if isinstance(auth, dict) else {}
        if "ticket" in auth:
            token = auth.get("ticket")
            ticket = (
                ticket_by_token(token) if isinstance(token, str) and 0 < len(token) <= 64 else None
            )
            if ticket is None:
                raise ConnectionRefusedError("unknown_ticket")
            return Connection(
                "ticket",
                ticket.branch_id,
                f"ticket:{ticket.id}",
                ticket_id=ticket.id,
                extra_rooms=(phones_room(ticket.branch_id),),
            )
        if "dashboard" in auth:  # the live dashboard's pages (`dashboard.py`)
            return dashboard.identify(auth.get("dashboard"), browser_key(session))
        if "branch" in auth:
            code = auth.get("branch")
            if not current_user.is_authenticated:
                raise ConnectionRefusedError("sign_in_required")
            branch = (
                db.session.scalar(db.select(Branch).where(Branch.code == code))
                if isinstance(code, str) and len(code) <= 16
                else None
            )
            if branch is None:
                raise ConnectionRefusedError("unknown_branch")
            user: User = current_user
            if not (user.can_work_floor(branch) or user.can_view(branch)):
                raise ConnectionRefusedError("not_allowed")
            return Connection(
                "staff",
                branch.id,
                f"staff:{branch.id}",
                user_id=user.id,
                session_version=user.session_version,
                browser=browser_key(session),
            )
        wanted = auth.get("device")
        kinds = (
            [DeviceKind(wanted)] if wanted in ("display", "kiosk", "feedback") else list(DeviceKind)
        )
        kinds.sort(key=lambda k: k != DeviceKind.DISPLAY)
        for kind in kinds:
            device = device_for_token(request.cookies.get(cookie_name(kind)))
            if device is None or device.kind != kind:
                continue
            if not device.is_paired:
                raise ConnectionRefusedError("device_not_paired")
            if kind == DeviceKind.FEEDBACK:
                # a feedback tablet hears the visits finished at its own counter only
                if device.counter_id is None:
                    raise ConnectionRefusedError("device_not_paired")
                return Connection(
                    kind.value,
                    device.branch_id,
                    f"feedback:{device.branch_id}:{device.counter_id}",
                    device_id=device.id,
                    extra_rooms=(tablets_room(device.branch_id),),
                )
            return Connection(
                kind.value,
                device.branch_id,
                f"{kind.value}:{device.branch_id}",
                device_id=device.id,
            )
        raise ConnectionRefusedError("not_allowed")

    @staticmethod
    def rooms(conn: Connection) -> list[str]:
        """The audience room, and the rooms naming who it is (for disconnects.py)."""
        rooms = [conn.room, *conn.extra_rooms]
        if conn.device_id is not None:
            rooms.append(device_room(conn.device_id))
        if conn.user_id is not None:
            rooms += [user_room(conn.user_id), browser_room(conn.user_id, conn.browser)]
        return rooms

    def _still_allowed(self, conn: Connection) -> bool:
        if conn.device_id is not None:
            device = db.session.get(Device, conn.device_id)
            return device is not None and device.is_paired and device.branch_id == conn.branch_id
        if conn.audience == "dashboard":
            return dashboard.still_allowed(db.session, conn)
        if conn.user_id is not None:
            user = db.session.get(User, conn.user_id)
            branch = db.session.get(Branch, conn.branch_id)
            return (
                user is not None
                and branch is not None
                and user.session_version == conn.session_version
                and (user.can_work_floor(branch) or user.can_view(branch))
            )
        return True

    def _snapshot(self, conn: Connection) -> dict:
        try:
            if conn.audience == "ticket":
                from ..tickets.models import Ticket

                return payloads.ticket_snapshot(db.session, db.session.get(Ticket, conn.ticket_id))
            if conn.audience == "dashboard":
                return dashboard.snapshot(db.session, conn)
            branch = db.session.get(Branch, conn.branch_id)
            if conn.audience == "staff":
                return payloads.staff_snapshot(db.session, branch)
            if conn.audience == "kiosk":
                return payloads.kiosk_snapshot(db.session, branch)
            if conn.audience == "feedback":
                tablet = db.session.get(Device, conn.device_id)
                return payloads.feedback_snapshot(db.session, tablet)
            device = db.session.get(Device, conn.device_id)
            return payloads.display_snapshot(db.session, branch, device.settings if device else {})
        finally:
            db.session.rollback()  # read-only; release SQLite's lock at once

    # --- events ------------------------------------------------------------------------------

    def on_connect(self, auth=None):
        conn = self._identify(auth)
        for room in self.rooms(conn):
            join_room(room)
        if conn.device_id is not None or conn.user_id is not None:
            # a sign-out or revoke committed between `_identify` and the joins found no one in
            # the rooms to disconnect: look again, in a fresh transaction, now that we are in
            db.session.rollback()
            allowed = self._still_allowed(conn)
            db.session.rollback()
            if not allowed:
                raise ConnectionRefusedError("not_allowed")
        with self.lock:
            self.connections[request.sid] = conn
        from ..observability.metrics import socket_connected

        socket_connected(conn.audience)
        emit("snapshot", self._snapshot(conn))

    def on_disconnect(self, reason=None):
        with self.lock:
            conn = self.connections.pop(request.sid, None)
        if conn is not None:
            from ..observability.metrics import socket_disconnected

            socket_disconnected(conn.audience)

    def on_snapshot(self, _data=None):
        conn = self.connections.get(request.sid)
        if conn is None:
            return {"error": "not_connected"}
        if not conn.take():
            return {"error": "rate_limited", "retry_after_s": SNAPSHOT_REFILL_S}
        if not self._still_allowed(conn):
            db.session.rollback()
            disconnect()
            return {"error": "not_allowed"}
        return self._snapshot(conn)

    def trigger_event(self, event, *args):
        # only the events above exist; anything else (a "join" with a room name ...) is ignored
        if event not in ("connect", "disconnect", "snapshot"):
            return None
        return super().trigger_event(event, *args)
