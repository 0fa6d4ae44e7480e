"""Committed journal entries -> Socket.IO pushes, built in the process that holds the sockets.

`tickets.journal` publishes a "journey" domain event per entry; `core.events` sends it through
blinker only after the commit, and not at all after a rollback. The receiver here only queues
(branch, seq): the request that made the change is not slowed down by the pushes. One worker
thread per application drains the queue in order and, for each batch:

1. shares it: with a Redis `SOCKETIO_MESSAGE_QUEUE` it publishes ONE small "journal" message
   (the (branch, seq) pairs, no payloads) on Socket.IO's channel (`disconnects.py`'s
   managers); every other server process hands it to its own pusher;
2. builds the pushes for the sockets of this process only: it reads the committed rows in an
   application context of its own and emits to the rooms that have members here
   (`ignore_queue`: nothing goes back through Redis). A process with no socket of the branch
   reads nothing: a gunicorn worker that only serves HTTP, or any process while no display,
   kiosk, counter screen or phone of the branch listens (`phones_room`), pays one PUBLISH per
   batch and nothing else. Hence the branch affinity of the realtime processes: floor.js puts
   the branch's code in the handshake's query (`?branch=`), the reverse proxy hashes it (the
   README's nginx site), and every socket of a branch lands in the same process, which is
   then the only one that reads the branch's changes. Without it, every process reads them.

First each entry's own pushes, then the new places of the waiting tickets that have a phone
listening (`payloads.change_steps`).

The estimate is made at most once per branch per `EWT_MIN_INTERVAL_S` (`waits.live`): a change
pushed inside the interval carries the last estimate, and the new one is *pending*. Then one
deferred push is put off to the end of the interval (per branch, however many changes came
meanwhile: `deferred.Deferred`, the timer of the dashboard hints); the worker then makes the
estimate of the branch's state at that moment and sends a `change` of kind `estimate`
(`payloads.estimate_steps`) to the rooms that show estimates, and an `estimate` hint to the
dashboard rooms. A change pushed with an up-to-date estimate meanwhile cancels it.

The asyncio realtime process (`aio.py`) runs the same pusher with a delivery function that
hands each step to its event loop.
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
from .dashboard import DEFAULT_INTERVAL_S, DashboardHints
from .deferred import Deferred

log = logging.getLogger(__name__)
NAMESPACE = "/floor"
AUDIENCES = ("display", "kiosk", "staff")  # the branch rooms: `<audience>:<branch id>`
EXTENSION = "queue_app.realtime"


def phones_room(branch_id: int) -> str:
    """Every phone following a ticket of the branch (`ticket:<id>` is its own room): whether
    one listens in this process decides whether a change of the branch is read here. Never
    sent to."""
    return f"phones:{branch_id}"


def tablets_room(branch_id: int) -> str:
    """Every feedback tablet of the branch (`feedback:<branch>:<counter>` is each one's own
    room), as `phones_room`. Never sent to."""
    return f"tablets:{branch_id}"


# a deferred estimate wakes this long after the interval ends (more than `deferred.SLACK_S`):
# then the estimator may run for sure
WAKE_AFTER_S = 0.01


class _Estimate:
    """A queue item: push the estimates of these branches (their deferred push is due)."""

    def __init__(self, branch_ids):
        self.branch_ids = list(branch_ids)


class Pusher:
    """`server`: the Socket.IO server whose local rooms are served (default: the one bound to
    this application); `deliver`: sends one step of (room, payload) pairs to those rooms
    (default: `server.emit(..., ignore_queue=True)`, for the threading server)."""

    def __init__(self, app, server=None, deliver=None):
        self.app = app
        self.queue: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.sent = 0  # pushes emitted by this process (tests and the benchmark read it)
        self.built = 0  # batches this process read the database for (tests read it)
        # the Socket.IO server bound to this application (`socketio` is one global object that
        # every `create_app` rebinds; a test process may build several applications)
        self.server = server if server is not None else socketio.server
        self.deliver = deliver or self._emit
        # throttled hints for the live dashboard's rooms (`dashboard.py`)
        self.dashboard = DashboardHints(
            self, app.config.get("DASHBOARD_PUSH_INTERVAL_S", DEFAULT_INTERVAL_S)
        )
        # estimates still pending when a change was pushed: pushed once they can be made
        self.estimates = Deferred(self._estimates_due, name="realtime-estimates")
        self.estimated: dict = {}  # branch id -> the estimate (`waits.live.Live`) last pushed
        self.estimate_pushes = 0  # deferred estimate pushes built (tests read it)
        manager = getattr(self.server, "manager", None)
        if hasattr(manager, "on_journal"):  # journal messages of the other processes
            manager.on_journal = self.receive

    def enqueue(self, branch_id: int, seq: int) -> None:
        """A change committed in this process: shared with the others, pushed here."""
        self._ensure_thread()
        self.queue.put((branch_id, seq, True))

    def receive(self, items) -> None:
        """Changes another process committed and shared: pushed here only."""
        self._ensure_thread()
        for branch_id, seq in items:
            self.queue.put((branch_id, seq, False))

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
            shared: list[tuple[int, int]] = []
            markers = []
            estimates: set[int] = set()
            for item in items:
                if isinstance(item, threading.Event):
                    markers.append(item)
                    continue
                if isinstance(item, _Estimate):
                    estimates.update(item.branch_ids)
                    continue
                branch_id, seq, share = item
                batch[branch_id].append(seq)
                if share:
                    shared.append((branch_id, seq))
            if shared:
                try:
                    self._share(shared)
                except Exception:  # Redis down: the others catch up from their snapshots
                    log.exception("sharing journal entries failed")
            if batch:
                try:
                    self._push(batch)
                except Exception:  # a failed push must not stop later ones
                    log.exception("realtime push failed")
            estimates -= set(batch)  # a change of the branch was just pushed: it decided
            if estimates:
                try:
                    self._push_estimates(sorted(estimates))
                except Exception:
                    log.exception("realtime estimate push failed")
            for marker in markers:
                marker.set()

    def _share(self, items: list[tuple[int, int]]) -> None:
        publish = getattr(self.server.manager, "publish_journal", None)
        if publish is not None:
            publish(items)

    def _rooms(self) -> dict:
        """This process's /floor rooms that have members: room -> members."""
        return self.server.manager.rooms.get(NAMESPACE) or {}

    def _emit(self, step) -> None:
        for room, payload in step:
            self.server.emit("change", payload, to=room, namespace=NAMESPACE, ignore_queue=True)

    def _push(self, batch: dict[int, list[int]]) -> None:
        from .payloads import change_steps

        rooms = self._rooms()
        if not rooms:
            return  # no socket in this process: nothing to read
        self.dashboard.note(batch, rooms)  # hints only: nothing read

        def wanted(room: str) -> bool:
            return bool(rooms.get(room))

        todo = {
            branch_id: seqs
            for branch_id, seqs in batch.items()
            if wanted(phones_room(branch_id))
            or wanted(tablets_room(branch_id))
            or any(wanted(f"{kind}:{branch_id}") for kind in AUDIENCES)
        }
        if not todo:
            return
        with self.app.app_context():
            try:
                read_only(db.session)
                for branch_id, seqs in todo.items():
                    self.built += 1
                    # the entries' own pushes (displays, kiosks, staff) leave before the new
                    # places of the waiting tickets are built
                    for step in change_steps(db.session, branch_id, sorted(seqs), wanted):
                        db.session.rollback()  # read-only: end the transaction before sending
                        read_only(db.session)  # and read the next step as a reader too
                        if step:
                            self.deliver(step)
                            self.sent += len(step)
                    self._note_estimate(branch_id, max(seqs))
            finally:
                db.session.rollback()

    # --- estimates made after the change was pushed --------------------------------------

    def _note_estimate(self, branch_id: int, seq: int) -> None:
        """After the push of change `seq`: if a read got an older estimate (the change was
        pending, `waits.live.pending`), push the estimate when the interval ends; otherwise
        what was pushed is up to date and a deferred push waiting for the branch goes."""
        from ..waits import live

        pending = live.pending(branch_id)
        if pending is not None:
            self.estimates.defer(branch_id, pending[1] + WAKE_AFTER_S)
            return
        known = live.last_estimates(branch_id)
        if known is not None and known.seq is not None and known.seq >= seq:
            self.estimated[branch_id] = known
            self.estimates.take(branch_id)

    def _estimates_due(self, due) -> None:
        """The timer of `self.estimates`: the worker builds the pushes, in order with the
        others."""
        self._ensure_thread()
        self.queue.put(_Estimate(branch_id for branch_id, _value in due))

    def _push_estimates(self, branch_ids: list[int]) -> None:
        """The deferred pushes: the estimate of each branch's state now, to the rooms that
        show estimates and listen in this process (`payloads.estimate_steps`)."""
        from ..branches.models import Branch
        from ..waits import live
        from .dashboard import NETWORK_ROOM
        from .dashboard import room as dashboard_room
        from .payloads import estimate_steps

        rooms = self._rooms()
        if not rooms:
            return

        def wanted(room: str) -> bool:
            return bool(rooms.get(room))

        with self.app.app_context():
            try:
                read_only(db.session)
                for branch_id in branch_ids:
                    branch = db.session.get(Branch, branch_id)
                    if branch is None:
                        continue
                    fresh = live.branch_estimates(branch)  # the interval is over: it runs
                    pending = live.pending(branch_id)
                    if pending is not None:  # woke early, or another read came first
                        self.estimates.defer(branch_id, pending[1] + WAKE_AFTER_S)
                        continue
                    if fresh.seq is None or fresh is self.estimated.get(branch_id):
                        continue  # a push carried this very estimate already
                    self.estimated[branch_id] = fresh
                    self.estimate_pushes += 1
                    for step in estimate_steps(db.session, branch, fresh, wanted):
                        db.session.rollback()
                        read_only(db.session)
                        if step:
                            self.deliver(step)
                            self.sent += len(step)
                    hint = {"kind": "estimate", "branch_id": branch_id, "seq": fresh.seq}
                    step = [
                        (name, hint)
                        for name in (dashboard_room(branch_id), NETWORK_ROOM)
                        if wanted(name)
                    ]
                    if step:
                        self.deliver(step)
                        self.sent += len(step)
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
