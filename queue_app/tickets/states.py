"""The ticket state machine: every action, the states it may start from and where it leads."""

from ..core.errors import IllegalTransition
from .models import TicketStatus as S

TRANSITIONS: dict[str, tuple[frozenset[S], S]] = {
    "call": (frozenset({S.WAITING}), S.CALLED),
    "recall": (frozenset({S.CALLED}), S.CALLED),
    "start": (frozenset({S.CALLED}), S.SERVING),
    "finish": (frozenset({S.SERVING}), S.FINISHED),
    "no_show": (frozenset({S.CALLED}), S.NO_SHOW),
    "transfer": (frozenset({S.CALLED, S.SERVING}), S.TRANSFERRED),
    "hold": (frozenset({S.CALLED, S.SERVING}), S.HELD),
    "resume": (frozenset({S.HELD}), S.WAITING),
    "cancel": (frozenset({S.WAITING, S.CALLED, S.HELD}), S.CANCELLED),
}

ACTIONS = tuple(TRANSITIONS)


def target(action: str, current: S) -> S:
    """The state `action` leads to from `current`; IllegalTransition if it may not."""
    allowed, to = TRANSITIONS[action]
    if current not in allowed:
        raise IllegalTransition(
            f"cannot {action.replace('_', '-')} a ticket that is {current.value}",
            f"cannot_{action}",
        )
    return to
