"""Real time on the branch floor: one Socket.IO namespace, `/floor` (see docs/realtime.md).

`init_realtime(app)` registers the namespace and the worker that turns committed journal
entries into pushes. Rooms are decided by the server from who connects (`handlers.py`);
payloads per audience are in `payloads.py`; the after-commit pushes in `pushes.py`; closing
the sockets of a signed-out user or a revoked device in every process in `disconnects.py`
(`disconnect_user(user_id)`: call it after committing a change of an account's role, branches
or `active` flag).
"""

from .disconnects import disconnect_device, disconnect_user
from .pushes import EXTENSION, NAMESPACE, Pusher, pusher

__all__ = ["NAMESPACE", "disconnect_device", "disconnect_user", "init_realtime", "pusher"]


def init_realtime(app) -> None:
    from ..extensions import socketio
    from .handlers import FloorNamespace

    origins = app.config.get("CORS_ORIGINS") or []
    if "*" in origins:
        raise RuntimeError("CORS_ORIGINS must list origins explicitly, never '*'")
    app.extensions[EXTENSION] = Pusher(app)
    # each `socketio.init_app` makes a new Socket.IO server (a process may build several apps:
    # the tests, a document built at import): the namespace goes on each of them once
    if not getattr(socketio.server, "_queue_app_floor", False):
        socketio.on_namespace(FloorNamespace(NAMESPACE))
        socketio.server._queue_app_floor = True
