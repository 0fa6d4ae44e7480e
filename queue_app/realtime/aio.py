"""The production realtime server: python-socketio's asyncio server under aiohttp, one process
that holds thousands of idle /floor websockets and reads the same Redis message queue as the
gunicorn workers.

    SOCKETIO_MESSAGE_QUEUE=redis://... python -m queue_app.realtime.aio --port 5001

Why a process of its own: under gunicorn's gthread workers a websocket holds one worker
thread for its whole life (2 workers x 8 threads = 16 sockets), and the threading server
spends two or three threads per websocket. Here a connection is a few coroutines. The
gunicorn workers keep serving HTTP (pages, API) and share their committed journal entries
through the queue (`pushes.py`); this process builds the pushes for its own connections,
delivers them, and obeys `disconnects.py`'s room disconnects. The reverse proxy sends
`/socket.io/` here (see docs/realtime.md).

Connections are identified exactly as in the threading server: the same `FloorNamespace`
checks run in a small thread pool, inside a Flask request context built from the
handshake (cookies, user agent, client address), so Flask-Login, the device cookies and the
database work as in a request.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import engineio.async_socket
import engineio.exceptions
import socketio
from aiohttp import web

from .disconnects import CHANNEL, AsyncFloorRedisManager
from .handlers import SNAPSHOT_REFILL_S, Connection, FloorNamespace
from .pushes import NAMESPACE, Pusher

log = logging.getLogger(__name__)
DB_THREADS = 4  # connects and snapshot requests that read the database at the same time


def _wsgi_environ(environ: dict) -> dict:
    """A plain WSGI environ for Flask from the one python-engineio builds for aiohttp."""
    env = {
        k: v
        for k, v in environ.items()
        if isinstance(v, str)
        and (k.startswith("HTTP_") or k in ("QUERY_STRING", "SERVER_PROTOCOL", "wsgi.url_scheme"))
    }
    request = environ.get("aiohttp.request")
    env.update(
        {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/socket.io/",
            "SCRIPT_NAME": "",
            "SERVER_NAME": "realtime",
            "SERVER_PORT": "0",
            "REMOTE_ADDR": (getattr(request, "remote", None) or "127.0.0.1"),
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
    )
    return env


class AsyncFloor(socketio.AsyncNamespace):
    """/floor on the asyncio server: same rooms, same checks, same events as `FloorNamespace`."""

    def __init__(self, app, pool: ThreadPoolExecutor):
        super().__init__(NAMESPACE)
        self.app = app
        self.pool = pool
        self.checks = FloorNamespace(NAMESPACE)  # identification and snapshots (sync code)
        self.connections: dict[str, Connection] = {}

    async def _in_request(self, environ, fn, *args):
        def job():
            from ..extensions import db

            with self.app.request_context(_wsgi_environ(environ)):
                try:
                    return fn(*args)
                finally:
                    db.session.rollback()

        return await asyncio.get_running_loop().run_in_executor(self.pool, job)

    async def on_connect(self, sid, environ, auth=None):
        conn = await self._in_request(environ, self.checks._identify, auth)
        for room in FloorNamespace.rooms(conn):
            await self.enter_room(sid, room)
        if (conn.device_id is not None or conn.user_id is not None) and not (
            await self._in_request(environ, self.checks._still_allowed, conn)
        ):
            # signed out or revoked between the check and the joins (see handlers.on_connect)
            raise socketio.exceptions.ConnectionRefusedError("not_allowed")
        self.connections[sid] = conn
        from ..observability.metrics import socket_connected

        socket_connected(conn.audience)
        snapshot = await self._in_request(environ, self.checks._snapshot, conn)
        await self.emit("snapshot", snapshot, to=sid)

    async def on_disconnect(self, sid, reason=None):
        conn = self.connections.pop(sid, None)
        if conn is not None:
            from ..observability.metrics import socket_disconnected

            socket_disconnected(conn.audience)

    async def on_snapshot(self, sid, _data=None):
        conn = self.connections.get(sid)
        if conn is None:
            return {"error": "not_connected"}
        if not conn.take():
            return {"error": "rate_limited", "retry_after_s": SNAPSHOT_REFILL_S}
        environ = self.server.get_environ(sid, namespace=NAMESPACE) or {}
        if not await self._in_request(environ, self.checks._still_allowed, conn):
            await self.disconnect(sid)
            return {"error": "not_allowed"}
        return await self._in_request(environ, self.checks._snapshot, conn)

    async def trigger_event(self, event, *args):
        if event not in ("connect", "disconnect", "snapshot"):
            return None
        return await super().trigger_event(event, *args)


async def _poll(self):
    """`engineio.async_socket.AsyncSocket.poll` without `asyncio.wait_for`, which (Python
    3.11) wraps every wait in a task of its own: one task per connection per message, a
    quarter of this process's time with 2,000 connections (py-spy, bench/README.md).
    `asyncio.timeout` is the same deadline without the task."""
    try:
        async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
            packets = [await self.queue.get()]
        self.queue.task_done()
    except (TimeoutError, asyncio.CancelledError):
        raise engineio.exceptions.QueueEmpty() from None
    if packets == [None]:
        return []
    while True:
        try:
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        except asyncio.QueueEmpty:
            break
    return packets


def build(app, message_queue: str | None) -> web.Application:
    """The aiohttp application serving /socket.io/ for /floor."""
    origins = app.config.get("CORS_ORIGINS") or None
    if origins and "*" in origins:
        raise RuntimeError("CORS_ORIGINS must list origins explicitly, never '*'")
    if hasattr(asyncio, "timeout"):  # Python 3.11+
        engineio.async_socket.AsyncSocket.poll = _poll
    manager = AsyncFloorRedisManager(message_queue, channel=CHANNEL) if message_queue else None
    server = socketio.AsyncServer(
        async_mode="aiohttp", client_manager=manager, cors_allowed_origins=origins
    )
    pool = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="realtime-db")
    server.register_namespace(AsyncFloor(app, pool))
    web_app = web.Application()
    server.attach(web_app)
    loop_box: list[asyncio.AbstractEventLoop] = []

    async def deliver_step(step):
        if hasattr(server.manager, "deliver_local"):
            await server.manager.deliver_local(step)
        else:  # no message queue (tests): python-socketio's own local emit
            for room, payload in step:
                await server.emit("change", payload, to=room, namespace=NAMESPACE)

    def deliver(step):
        # from the pusher's thread: one step at a time, in order, each sent before the next
        asyncio.run_coroutine_threadsafe(deliver_step(step), loop_box[0]).result(timeout=30)

    # the journal entries the other processes share reach this process's pusher, which builds
    # the pushes of the rooms that have members here (pushes.py)
    web_app["pusher"] = Pusher(app, server=server, deliver=deliver)

    async def remember_loop(_app):
        loop_box.append(asyncio.get_running_loop())

    web_app.on_startup.append(remember_loop)

    async def healthz(_request):
        return web.json_response({"status": "ok", "connections": len(server.manager.rooms)})

    web_app.router.add_get("/healthz", healthz)

    async def metrics(request):
        # this process's own registry (socket clients by audience ...), for the operator's
        # Prometheus only: the same METRICS_TOKEN / METRICS_ALLOW checks as the web's /metrics
        from prometheus_client import CONTENT_TYPE_LATEST

        from ..observability.metrics import REFUSALS, Access, exposition

        status = Access(app.config).check(request.remote, request.headers.get("Authorization"))
        if status != 200:
            code, message = REFUSALS[status]
            headers = {"WWW-Authenticate": 'Bearer realm="metrics"'} if status == 401 else None
            return web.json_response(
                {"error": {"code": code, "message": message}}, status=status, headers=headers
            )
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    web_app.router.add_get("/metrics", metrics)
    web_app["socketio"] = server
    return web_app


def main(argv=None) -> None:
    from .. import config as config_module
    from .. import create_app

    parser = argparse.ArgumentParser(description="queue_app realtime server (/floor, asyncio)")
    parser.add_argument("--host", default=os.environ.get("REALTIME_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("REALTIME_PORT", "5001")))
    args = parser.parse_args(argv)
    # one process: its metrics stay in its own registry, served on its own /metrics (a
    # multiprocess directory shared with gunicorn would keep its socket gauge after it died)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    profile = os.environ.get("QUEUE_APP_PROFILE", "production")
    message_queue = config_module.load(profile)["SOCKETIO_MESSAGE_QUEUE"]
    if not message_queue:
        raise SystemExit("the realtime server needs SOCKETIO_MESSAGE_QUEUE (or REDIS_URL)")
    # the Flask application only identifies connections and reads snapshots here; it needs no
    # Socket.IO queue of its own (the asyncio server below listens to it)
    app = create_app(profile, SOCKETIO_MESSAGE_QUEUE=None, SCHEDULER_ENABLED=False)
    try:  # optional (`pip install queue_app[realtime]`): the event loop and sockets in C
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        log.info("uvloop is not installed: the standard asyncio event loop serves")
    web.run_app(build(app, message_queue), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
