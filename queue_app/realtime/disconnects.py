"""Closing the sockets of a signed-out or changed account and of a revoked device, in every
server process.

Besides its audience room, a connection joins rooms named after who it is: `user:<id>` and
`browser:<user id>:<key>` (staff; the key stands for the browser session, see
`browser_key`), `device:<id>` (displays, kiosks). Disconnecting "everybody in a room" is one
message on Socket.IO's own message queue: `FloorRedisManager.disconnect_room` publishes
python-socketio's `close_room` message with a `disconnect` flag; every server process (the
threading ones of Flask-SocketIO and the asyncio realtime process alike) disconnects its
local members of the room, then closes the room as usual. A process without the flag's
handler still closes the room, so it stops sending to those sockets. Without a message queue
(the embedded profile) the room's members are disconnected in this process.

Receivers of the domain events `user.signed_out` and `device.revoked` (both delivered only
after the commit, `core.events`) call this; so does anything that changes an account's role,
branches or `active` flag, through `disconnect_user`.
"""

from __future__ import annotations

import hashlib
import logging

import socketio
import socketio.packet
from engineio import packet as engineio_packet
from flask import current_app, has_app_context, has_request_context, session

from ..core.events import signal

log = logging.getLogger(__name__)
NAMESPACE = "/floor"
NO_KEY = "-"
CHANNEL = "flask-socketio"  # Flask-SocketIO's default message-queue channel


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def device_room(device_id: int) -> str:
    return f"device:{device_id}"


def browser_room(user_id: int, key: str) -> str:
    return f"browser:{user_id}:{key}"


def browser_key(sess) -> str:
    """A stable, non-secret name for one browser session: a digest of its CSRF secret
    (Flask-WTF keeps one random value per session cookie; the logout form posts it, and every
    page that opens a socket shows that form). `NO_KEY` when the session has none."""
    raw = sess.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    if not raw:
        return NO_KEY
    return hashlib.sha256(f"floor:{raw}".encode()).hexdigest()[:20]


# --- the message-queue managers --------------------------------------------------------------


def _disconnect_message(manager, room: str, namespace: str) -> dict:
    return {
        "method": "close_room",
        "room": room,
        "namespace": namespace,
        "host_id": manager.host_id,
        "disconnect": True,
    }


JOURNAL = "journal"
_JOURNAL_PREFIX = b'{"method": "journal"'  # how `json.dumps` of `_journal_message` begins


def _journal_message(manager, items) -> dict:
    return {"method": JOURNAL, "items": [list(i) for i in items], "host_id": manager.host_id}


def _journal_items(manager, raw):
    """The (branch, seq) pairs of another process's journal message; None for any other
    message (left to python-socketio)."""
    if isinstance(raw, str):
        raw = raw.encode()
    if not isinstance(raw, bytes | bytearray) or not raw.startswith(_JOURNAL_PREFIX):
        return None
    try:
        data = manager.json.loads(raw)
        if data.get("host_id") == manager.host_id:
            return []  # this process's own: pushed here already
        return [(int(b), int(s)) for b, s in data["items"]]
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed journal message")
        return []


class FloorRedisManager(socketio.RedisManager):
    """python-socketio's Redis manager (threading servers) that can disconnect a room and
    carries the journal entries of each process to the pushers of the others (`pushes.py`):
    one "journal" message per batch on the same channel, not one emit per push."""

    on_journal = None  # set by this process's `Pusher`

    def publish_journal(self, items) -> None:
        self._publish(_journal_message(self, items))

    def _listen(self):
        for raw in super()._listen():
            items = _journal_items(self, raw)
            if items is None:
                yield raw
            elif items and self.on_journal is not None:
                self.on_journal(items)

    def disconnect_room(self, room: str, namespace: str = NAMESPACE) -> None:
        message = _disconnect_message(self, room, namespace)
        self._handle_close_room(message)  # this process
        self._publish(message)  # the others

    def _handle_close_room(self, message):
        if message.get("disconnect"):
            namespace = message.get("namespace") or "/"
            for sid, _eio_sid in list(self.get_participants(namespace, message.get("room"))):
                self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        super()._handle_close_room(message)


class AsyncFloorRedisManager(socketio.AsyncRedisManager):
    """The same for the asyncio realtime process (`realtime/aio.py`), which also delivers an
    emit to its local connections without a task per recipient (see `_handle_emit`)."""

    on_journal = None  # set by the process's `Pusher` (a plain function, called in the loop)

    async def publish_journal(self, items) -> None:
        await self._publish(_journal_message(self, items))

    async def _listen(self):
        async for raw in super()._listen():
            items = _journal_items(self, raw)
            if items is None:
                yield raw
            elif items and self.on_journal is not None:
                self.on_journal(items)

    async def deliver_local(self, step) -> None:
        """Send (room, payload) pairs of `change` events to this process's connections."""
        for room, payload in step:
            await self._handle_emit(
                {
                    "method": "emit",
                    "event": "change",
                    "data": [payload],
                    "namespace": NAMESPACE,
                    "room": room,
                }
            )

    async def _handle_emit(self, message):
        # python-socketio encodes the packet once per emit, then creates one asyncio task per
        # recipient and waits for them all: with 1,500 displays in a room that task churn was
        # a third of the process's CPU time (py-spy, bench/README.md). Handing the packet to
        # each connection's send queue in turn is the same work without it (an unbounded
        # queue's `put` never waits) and keeps the order of emits per connection.
        if message.get("callback") or message.get("binary"):
            return await super()._handle_emit(message)
        namespace = message.get("namespace") or "/"
        if namespace not in self.rooms:
            return
        data = message.get("data")
        data = [] if data in (None, [None]) else list(data)
        skip = message.get("skip_sid")
        skip = skip if isinstance(skip, list) else [skip]
        pkt = self.server.packet_class(
            socketio.packet.EVENT, namespace=namespace, data=[message["event"], *data]
        )
        encoded = pkt.encode()
        eio_packets = [
            engineio_packet.Packet(engineio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        for sid, eio_sid in list(self.get_participants(namespace, message.get("room"))):
            if sid in skip:
                continue
            for p in eio_packets:
                await self.server._send_eio_packet(eio_sid, p)

    async def disconnect_room(self, room: str, namespace: str = NAMESPACE) -> None:
        message = _disconnect_message(self, room, namespace)
        await self._handle_close_room(message)
        await self._publish(message)

    async def _handle_close_room(self, message):
        if message.get("disconnect"):
            namespace = message.get("namespace") or "/"
            for sid, _eio_sid in list(self.get_participants(namespace, message.get("room"))):
                await self.server.disconnect(sid, namespace=namespace, ignore_queue=True)
        await super()._handle_close_room(message)


def client_manager_options(message_queue: str | None) -> dict:
    """`client_manager` for `SocketIO.init_app`: a `FloorRedisManager` on Flask-SocketIO's
    default channel for a Redis queue, python-socketio's in-process manager without a queue
    (another kind of queue: Flask-SocketIO's own choice, which cannot disconnect rooms)."""
    if not message_queue:
        return {"client_manager": None}
    if message_queue.startswith(("redis://", "rediss://")):
        return {"client_manager": FloorRedisManager(message_queue, channel=CHANNEL)}
    return {}


def disconnect_room(server, room: str, namespace: str = NAMESPACE) -> None:
    """Disconnect every connection in `room`, in every server process."""
    manager = server.manager
    if hasattr(manager, "disconnect_room"):
        manager.disconnect_room(room, namespace)
        return
    if isinstance(manager, socketio.PubSubManager):  # another queue: room closed, not cut off
        log.warning("message queue %s cannot disconnect rooms", type(manager).__name__)
        manager.close_room(room, namespace)
        return
    for sid, _eio_sid in list(manager.get_participants(namespace, room)):
        server.disconnect(sid, namespace=namespace)


def _server():
    from ..extensions import socketio as flask_socketio
    from .pushes import pusher

    target = pusher() if has_app_context() else None
    return target.server if target is not None else flask_socketio.server


def disconnect_user(user_id: int) -> None:
    """Close every /floor connection of this account, in every server process. Call it after
    the commit of a change of the account's role, branches, `active` flag or session version
    (the `user.signed_out` event does it for sign-out-everywhere)."""
    server = _server()
    if server is not None:
        disconnect_room(server, user_room(user_id))


def disconnect_device(device_id: int) -> None:
    server = _server()
    if server is not None:
        disconnect_room(server, device_room(device_id))


def _on_signed_out(_sender, user_id=None, everywhere=True, **_payload):
    if user_id is None:
        return
    if everywhere or not has_request_context():
        disconnect_user(user_id)
        return
    # one browser session signed out (delivered after the commit, inside the logout request,
    # before the view clears the session): its connections, and those that had no key
    server = _server()
    if server is not None:
        for key in {browser_key(session), NO_KEY}:
            disconnect_room(server, browser_room(user_id, key))


def _on_device_revoked(_sender, device_id=None, **_payload):
    if device_id is not None:
        disconnect_device(device_id)


signal("user.signed_out").connect(_on_signed_out, weak=False)
signal("device.revoked").connect(_on_device_revoked, weak=False)
