"""Alerts are evaluated on every state change of a branch: the committed `journey` event (one
per journal entry, `tickets/journal.py` and `tickets/fastpath.py`) hands the branch to the
application's `Evaluator`, which evaluates it in a unit of work of its own after the commit.

`ALERTS_ON_CHANGE` says how:

- "thread" (default): a daemon thread per process (started at the first event, again after a
  fork) evaluates; the request that made the change only queues the branch id. Debounced: a
  branch is evaluated at most once per `ALERTS_DEBOUNCE_S` seconds; changes in between are
  folded into one evaluation at the end of that interval (the last change is never lost).
- "sync": right after the commit, in the committing thread, in an application context (hence a
  session) of its own; not debounced (tests: deterministic).
- "off": only the `evaluate_alerts` job (every minute) evaluates. The testing profile's
  default: the suite's other tests commit journal entries all the time.

Either way a failure is logged and never reaches the request that made the change. The
evaluation's clock is `Evaluator.clock` (`utcnow`; tests freeze it).

An evaluation of a branch that nothing watches (no enabled rule, no open alert: most
branches) is one read, rolled back (`services.needs_evaluation`); the others run as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import current_app

from ..core.db import read_only
from ..core.events import signal
from ..core.types import utcnow
from ..extensions import db

log = logging.getLogger(__name__)
EXTENSION = "queue_app.alerts"


class Evaluator:
    def __init__(self, app):
        self.app = app
        self.clock = utcnow
        self._cond = threading.Condition()
        self._due: dict[int, float] = {}  # branch id -> monotonic time to evaluate at
        self._last: dict[int, float] = {}  # branch id -> monotonic time of the last run
        self._running = 0
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.runs = 0  # evaluations done by this process (tests read it)

    @property
    def mode(self) -> str:
        return str(self.app.config.get("ALERTS_ON_CHANGE", "thread")).lower()

    def submit(self, branch_id: int) -> None:
        mode = self.mode
        if mode == "off":
            return
        if mode == "sync":
            self.run(branch_id)
            return
        debounce = float(self.app.config.get("ALERTS_DEBOUNCE_S", 1.0))
        with self._cond:
            if branch_id not in self._due:
                last = self._last.get(branch_id)
                now = time.monotonic()
                self._due[branch_id] = now if last is None else max(now, last + debounce)
                self._cond.notify_all()
        self._ensure_thread()

    def run(self, branch_id: int) -> list:
        """Evaluate one branch now, in an application context of its own, and commit.

        First one read, as a reader (SQLite: no write lock), rolled back: does anything watch
        the branch (`services.needs_evaluation`)? Most branches have neither an enabled rule
        nor an open alert, and their evaluation stops there: no branch load, no row lock, no
        commit. Otherwise the evaluation runs as it always did, in a unit of work of its own
        (SQLite: `BEGIN IMMEDIATE`; both: the open alerts locked `FOR UPDATE`)."""
        from ..branches.models import Branch
        from .services import evaluate_branch, needs_evaluation

        with self.app.app_context():
            try:
                read_only(db.session)
                watched = needs_evaluation(db.session, branch_id)
                db.session.rollback()
                if not watched:
                    self.runs += 1
                    return []
                branch = db.session.get(Branch, branch_id)
                changed = (
                    evaluate_branch(db.session, branch, self.clock()) if branch is not None else []
                )
                db.session.commit()
                self.runs += 1
                return changed
            except Exception:
                db.session.rollback()
                log.exception("evaluating the alerts of branch %s failed", branch_id)
                return []

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every branch handed over so far was evaluated; False after `timeout`."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._due and not self._running, timeout)

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._work, name="alerts-evaluator", daemon=True
                )
                self._thread.start()

    def _next(self) -> int:
        with self._cond:
            while True:
                if self._due:
                    branch_id, at = min(self._due.items(), key=lambda item: item[1])
                    wait = at - time.monotonic()
                    if wait <= 0:
                        del self._due[branch_id]
                        self._last[branch_id] = time.monotonic()
                        self._running += 1
                        return branch_id
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def _work(self) -> None:
        while True:
            branch_id = self._next()
            try:
                self.run(branch_id)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()


def evaluator(app=None) -> Evaluator | None:
    app = app or current_app._get_current_object()
    return app.extensions.get(EXTENSION)


def init_alerts(app) -> None:
    """Give `app` its evaluator and connect the receiver (blinker keeps one connection)."""
    app.extensions.setdefault(EXTENSION, Evaluator(app))
    signal("journey").connect(_on_journey, weak=False)


def _on_journey(_sender, branch_id=None, **_payload) -> None:
    try:
        target = evaluator()
    except RuntimeError:  # no application context: nobody to evaluate for
        return
    if target is not None and branch_id is not None:
        target.submit(branch_id)
