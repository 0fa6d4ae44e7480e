"""A clock for tests that build recent history on the real clock ("a ticket issued five
minutes ago") and then act on it through the app, which reads the same clock.

A branch's business day ends at its local midnight: tickets of the day before are never
called, its waits are not today's, its queue is closed. History that straddles that midnight
is not the branch day the test describes, so such a test fails for a few minutes a day (in CI
at 17:00 UTC, midnight in Jakarta). `steady_clock()` keeps the clock where it is, unless a
local midnight of the test branches' zones falls within the last `history` or the next
`ahead`; then the clock (ticking) goes back to just before the earliest such midnight, clear
of every zone. The shift is at most a few hours, so a real browser's cookies and timers, on
the real clock, are unaffected; a test that must hold an exact moment travels there itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine

# the zones of the test branches (tests/factories.py and the browser floors)
ZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Asia/Manila", "Asia/Almaty")
HISTORY = timedelta(hours=1)
AHEAD = timedelta(minutes=20)
# where the clock lands before a midnight: half-way between five-minute marks, so that a test
# taking "the next booking slot" does not find it starting within the second
OFF_THE_GRID = timedelta(minutes=2, seconds=30)


def _midnights(start: datetime, end: datetime, zones: Iterable[str]) -> list[datetime]:
    """The local midnights of `zones` in (start, end], as UTC instants."""
    found = []
    for name in zones:
        zone = ZoneInfo(name)
        day = start.astimezone(zone).date()
        while True:
            day += timedelta(days=1)
            midnight = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
            if midnight > end:
                break
            found.append(midnight)
    return found


def clear_of_midnight(
    now: datetime, *, zones: Iterable[str] = ZONES, history=HISTORY, ahead=AHEAD
) -> datetime:
    """`now` if no local midnight of `zones` falls in (now - history, now + ahead]; otherwise
    the latest earlier instant for which none does."""
    zones = tuple(zones)
    moment = now
    while crossings := _midnights(moment - history, moment + ahead, zones):
        moment = min(crossings) - ahead - OFF_THE_GRID
    return moment


@contextmanager
def steady_clock(**kwargs):
    """The real clock, or (near a local midnight) a ticking one moved back clear of it."""
    now = datetime.now(UTC)
    moment = clear_of_midnight(now, **kwargs)
    if moment == now:
        yield now
        return
    with time_machine.travel(moment, tick=True):
        yield moment
