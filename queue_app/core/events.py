"""Domain events, delivered only after the unit of work commits.

Services call `publish(name, **payload)` while they work. The payloads wait in the session
and are sent through blinker signals once the transaction has committed; a rollback drops
them. Receivers (realtime pushes, notifications, escalation rules) therefore never act on
data that does not exist.

`in_transaction(name, **payload)` is the other kind: its receivers run at once, inside the
unit of work, and write to the same session (the outbox of `notify/`: a message is stored in
the transaction of the change it is about, and delivered after the commit). A receiver that
fails there fails the unit of work.
"""

import logging

from blinker import Namespace
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
signals = Namespace()
_KEY = "queue_app.pending_events"


def signal(name: str):
    return signals.signal(name)


def in_transaction(name: str, **payload) -> None:
    """Tell the receivers of `name` now, inside the unit of work (see the module's docstring)."""
    signals.signal(f"{name}:tx").send(None, **payload)


def in_transaction_signal(name: str):
    """The signal `in_transaction(name, ...)` sends: connect its receivers to it."""
    return signals.signal(f"{name}:tx")


def publish(session: Session, name: str, **payload) -> None:
    session.info.setdefault(_KEY, []).append((name, payload))


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the unit of work goes on
        return
    pending = session.info.pop(_KEY, None)
    for name, payload in pending or ():
        sig = signals.signal(name)
        if sig.is_muted:
            continue
        # each receiver on its own: one failing must neither undo or hide the committed change
        # nor keep the others (realtime pushes, notifications ...) from hearing about it
        for receiver in list(sig.receivers_for(None)):
            try:
                receiver(None, **payload)
            except Exception:
                log.exception("receiver of %s failed", name)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint rolled back: the outer work still stands
        return
    session.info.pop(_KEY, None)
