"""Domain events, delivered only after the unit of work commits.

Services call `publish(name, **payload)` while they work. The payloads wait in the session
and are sent through blinker signals once the transaction has committed; a rollback drops
them. Receivers (realtime pushes, notifications, escalation rules) therefore never act on
data that does not exist.
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


def publish(session: Session, name: str, **payload) -> None:
    session.info.setdefault(_KEY, []).append((name, payload))


@event.listens_for(Session, "after_commit")
def _deliver(session: Session) -> None:
    pending = session.info.pop(_KEY, None)
    for name, payload in pending or ():
        try:
            signals.signal(name).send(None, **payload)
        except Exception:  # a receiver's failure must not undo or hide a committed change
            log.exception("receiver of %s failed", name)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)
