"""Committed journal entries -> Socket.IO pushes, from a worker thread of each server process.

`tickets.journal` publishes a "journey" domain event per entry; `core.events` sends it through
blinker only after the commit, and not at all after a rollback. The receiver here only queues
(branch, seq): the request that made the change is not slowed down by building and sending
the pushes. One worker thread per application drains the queue in order, reads the committed
rows in an application context of its own and emits to the rooms: first each entry's own
pushes, then the new places of the waiting tickets (`payloads.change_steps`). With
`SOCKETIO_MESSAGE_QUEUE` set, `socketio.emit` publishes to Redis and every server process
delivers to its own connections.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import defaultdict

from flask import current_app

from ..core.db import read_only
from ..core.events import signal
from ..extensions import db, socketio

log = logging.getLogger(__name__)
NAMESPACE = "/floor"
EXTENSION = "queue_app.realtime"


class Pusher:
    def __init__(self, app):
        self.app = app
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.sent = 0  # pushes emitted by this process (tests and the benchmark read it)
        # the Socket.IO server bound to this application (`socketio` is one global object that
        # every `create_app` rebinds; a test process may build several applications)
        self.server = socketio.server

    def enqueue(self, branch_id: int, seq: int) -> None:
        self._ensure_thread()
        self.queue.put((branch_id, seq))

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far has been emitted (tests)."""
        done = threading.Event()
        self.queue.put(done)
        self._ensure_thread()
        if not done.wait(timeout):
            raise TimeoutError("realtime pushes not drained")

    def _ensure_thread(self):
        if self.thread is not None and self.thread.is_alive():
            return
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="realtime-pushes", daemon=True
                )
                self.thread.start()

    def _run(self):
        while True:
            items = [self.queue.get()]
            while True:  # take everything waiting: one read per branch for a burst
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            batch: dict[int, list[int]] = defaultdict(list)
            markers = []
            for item in items:
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch[item[0]].append(item[1])
            if batch:
                try:
                    self._push(batch)
                except Exception:  # a failed push must not stop later ones
                    log.exception("realtime push failed")
            for marker in markers:
                marker.set()

    def _push(self, batch: dict[int, list[int]]) -> None:
        from .payloads import change_steps

        with self.app.app_context():
            try:
                read_only(db.session)
                for branch_id, seqs in batch.items():
                    # the entries' own pushes (displays, kiosks, staff) leave before the new
                    # places of every waiting ticket are built
                    for step in change_steps(db.session, branch_id, sorted(seqs)):
                        db.session.rollback()  # read-only: end the transaction before sending
                        read_only(db.session)  # and read the next step as a reader too
                        for room, payload in step:
                            self.server.emit("change", payload, to=room, namespace=NAMESPACE)
                            self.sent += 1
            finally:
                db.session.rollback()


def pusher(app=None) -> Pusher | None:
    app = app or current_app._get_current_object()
    return app.extensions.get(EXTENSION)


def _on_journey(_sender, branch_id=None, seq=None, **_payload):
    try:
        target = pusher()
    except RuntimeError:  # no application context: nobody to push for
        return
    if target is not None and branch_id is not None and seq is not None:
        target.enqueue(branch_id, seq)


signal("journey").connect(_on_journey, weak=False)
