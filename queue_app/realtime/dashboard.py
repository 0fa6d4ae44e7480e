"""The `dashboard` audience of /floor: managers, CX agents, executives and admins watching the
live dashboard (`queue_app/dashboard/`).

Who joins what (decided here, from the signed-in user; clients name no rooms):

| auth | who | rooms |
| --- | --- | --- |
| `{"dashboard": "*"}` (the overview) | CX agent, executive, admin | `dashboard:network` |
| `{"dashboard": "*"}` | branch manager | `dashboard:<branch id>` of each of their branches |
| `{"dashboard": "JKT01"}` (a branch) | any of those who sees the branch | `dashboard:<branch id>` |

Pushes are hints, not data: `change` events `{"kind": "journey", "branch_id", "seq"}` after
committed journal entries, at most one per branch per `DASHBOARD_PUSH_INTERVAL_S` (the last
one of a burst is sent when the interval ends, so the page never stays behind),
`{"kind": "estimate", "branch_id", "seq"}` when an estimate that was pending at the last push
has been made (`pushes.Pusher`), and
`{"kind": "alert", "branch_id", "alert_id", "status"}` after an `alert.changed` commit. The page
refetches its JSON state on each (`static/js/dashboard.js`), on connect and every 30 s.
"""

from __future__ import annotations

import logging
import threading
import time

from flask_login import current_user
from flask_socketio import ConnectionRefusedError
from sqlalchemy import select

from ..branches.models import Branch
from ..core.events import signal
from .deferred import Deferred

log = logging.getLogger(__name__)
NETWORK_ROOM = "dashboard:network"
DEFAULT_INTERVAL_S = 1.0


def room(branch_id: int) -> str:
    return f"dashboard:{branch_id}"


def identify(target, browser: str):
    """The Connection of a dashboard page, or ConnectionRefusedError with the reason."""
    from ..dashboard import scope
    from .handlers import Connection

    if not current_user.is_authenticated:
        raise ConnectionRefusedError("sign_in_required")
    user = current_user._get_current_object()
    if not scope.may_open(user):
        raise ConnectionRefusedError("not_allowed")
    if target == "*":
        if scope.sees_network(user):
            rooms = [NETWORK_ROOM]
        else:
            rooms = [room(b.id) for b in scope.visible_branches(user)]
        branch_id = 0
    else:
        branch = scope.branch_by_code(target)
        if branch is None or not branch.active:
            raise ConnectionRefusedError("unknown_branch")
        if not scope.may_see(user, branch):
            raise ConnectionRefusedError("not_allowed")
        rooms, branch_id = [room(branch.id)], branch.id
    if not rooms:
        raise ConnectionRefusedError("not_allowed")
    return Connection(
        "dashboard",
        branch_id,
        rooms[0],
        user_id=user.id,
        session_version=user.session_version,
        browser=browser,
        extra_rooms=tuple(rooms[1:]),
    )


def still_allowed(session, conn) -> bool:
    from ..accounts.models import User
    from ..dashboard import scope

    user = session.get(User, conn.user_id)
    if user is None or user.session_version != conn.session_version or not scope.may_open(user):
        return False
    if conn.branch_id:
        branch = session.get(Branch, conn.branch_id)
        return branch is not None and scope.may_see(user, branch)
    return True


def snapshot(session, conn) -> dict:
    """Small: which branches the connection hears, with their sequence numbers. The page
    reads the figures from its JSON state."""
    if conn.room == NETWORK_ROOM:
        where = Branch.active.is_(True)
    else:
        ids = [int(r.split(":", 1)[1]) for r in (conn.room, *conn.extra_rooms)]
        where = Branch.id.in_(ids)
    rows = session.execute(
        select(Branch.id, Branch.code, Branch.event_seq).where(where).order_by(Branch.code)
    ).all()
    return {
        "audience": "dashboard",
        "seq": 0,
        "every_seq": False,
        "branches": [{"id": i, "code": c, "seq": s} for i, c, s in rows],
    }


def _listening(rooms: dict, branch_id: int) -> list[str]:
    return [r for r in (room(branch_id), NETWORK_ROOM) if rooms.get(r)]


class DashboardHints:
    """Throttled `journey` hints for the dashboard rooms of this process: at most one per
    branch per `interval` seconds; a change inside the interval is sent when it ends (one
    timer for all branches, `deferred.Deferred`), with the latest seq."""

    def __init__(self, pusher, interval: float = DEFAULT_INTERVAL_S):
        self.pusher = pusher
        self.interval = float(interval)
        self.lock = threading.Lock()
        self.last: dict[int, float] = {}
        self.later = Deferred(self.flush, name="dashboard-hints")
        self.sent = 0  # hints emitted (tests read it)

    def note(self, batch: dict[int, list[int]], rooms: dict) -> None:
        """Committed entries of `batch` ({branch id: seqs}); `rooms`: this process's rooms."""
        now = time.monotonic()
        due = []
        with self.lock:
            for branch_id, seqs in batch.items():
                if not seqs or not _listening(rooms, branch_id):
                    continue
                last = self.last.get(branch_id, float("-inf"))
                if now - last >= self.interval:
                    seq = max(max(seqs), self.later.take(branch_id, 0))
                    self.last[branch_id] = now
                    due.append((branch_id, seq))
                else:
                    self.later.defer(branch_id, last + self.interval, max(seqs), merge=max)
        self._send(due, rooms)

    def flush(self, due: list[tuple[int, int]]) -> None:
        """Send the hints whose interval has ended (`self.later` calls it)."""
        now = time.monotonic()
        with self.lock:
            for branch_id, _seq in due:
                self.last[branch_id] = now
        self._send(due, self.pusher._rooms())

    def _send(self, due: list[tuple[int, int]], rooms: dict) -> None:
        step = []
        for branch_id, seq in due:
            hint = {"kind": "journey", "branch_id": branch_id, "seq": seq}
            step += [(r, hint) for r in _listening(rooms, branch_id)]
        if step:
            self.pusher.deliver(step)
            self.sent += len(step)


def _on_alert_changed(_sender, branch_id=None, alert_id=None, status=None, **_payload):
    """After an alert's commit: a hint to every process's dashboard rooms of the branch
    (through the message queue when there is one). Alerts are rare: not throttled."""
    from .pushes import NAMESPACE, pusher

    try:
        target = pusher()
    except RuntimeError:  # no application context: nobody to push for
        return
    if target is None or branch_id is None:
        return
    hint = {
        "kind": "alert",
        "branch_id": branch_id,
        "alert_id": alert_id,
        "status": str(status) if status is not None else None,
    }
    for name in (room(branch_id), NETWORK_ROOM):
        target.server.emit("change", hint, to=name, namespace=NAMESPACE)


signal("alert.changed").connect(_on_alert_changed, weak=False)
