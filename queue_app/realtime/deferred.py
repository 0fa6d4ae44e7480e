"""Work put off per branch to a moment, with one timer for all branches.

`Deferred(release)`: `defer(key, due, value)` keeps at most one item per key (a later one
merges into it and keeps the earlier moment); one `threading.Timer` is armed for the earliest
moment; when it fires, the items that are due go to `release([(key, value), ...])` together
and the timer is armed again for what is left. Moments are `time.monotonic()` seconds.

Used by the dashboard's throttled hints (`dashboard.DashboardHints`: the last change of a burst
is sent when the interval ends) and by the pusher's deferred estimate (`pushes.Pusher`: an
estimate that was still pending when a change was pushed is pushed when it can be made).
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)
SLACK_S = 0.005  # a timer that wakes this much early still releases the item


class Deferred:
    def __init__(self, release, *, name: str = "deferred"):
        self.release = release
        self.name = name
        self.lock = threading.Lock()
        self.pending: dict = {}  # key -> (due, value)
        self.timer: threading.Timer | None = None
        self.wake: float | None = None  # when the armed timer fires
        self.fired = 0  # releases made (tests read it)

    def defer(self, key, due: float, value=None, merge=None) -> None:
        """Release `value` for `key` at `due`. An item already waiting for the key keeps its
        (earlier) moment and takes `merge(old, new)` (default: the new value)."""
        with self.lock:
            old = self.pending.get(key)
            if old is not None:
                due = min(due, old[0])
                value = merge(old[1], value) if merge is not None else value
            self.pending[key] = (due, value)
            self._arm(time.monotonic())

    def take(self, key, default=None):
        """Remove the key's waiting item and return its value (the caller acts now)."""
        with self.lock:
            item = self.pending.pop(key, None)
        return default if item is None else item[1]

    def waiting(self, key) -> bool:
        with self.lock:
            return key in self.pending

    def _arm(self, now: float) -> None:
        """Arm the timer for the earliest item, unless it is armed for that already (lock
        held)."""
        if not self.pending:
            return
        wake = min(due for due, _value in self.pending.values())
        if self.timer is not None and self.timer.is_alive():
            if self.wake is not None and self.wake <= wake + SLACK_S:
                return
            self.timer.cancel()  # an earlier item came: wake for it
        self.wake = wake
        self.timer = threading.Timer(max(0.0, wake - now), self.flush)
        self.timer.name = self.name
        self.timer.daemon = True
        self.timer.start()

    def flush(self) -> None:
        """Release the items that are due (the timer calls it)."""
        now = time.monotonic()
        with self.lock:
            self.timer, self.wake = None, None
            due = [(key, value) for key, (at, value) in self.pending.items() if at <= now + SLACK_S]
            for key, _value in due:
                del self.pending[key]
            self._arm(now)
        if not due:
            return
        self.fired += 1
        try:
            self.release(due)
        except Exception:  # a failed release must not stop later ones
            log.exception("%s failed", self.name)
