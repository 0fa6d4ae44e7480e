"""The tests' clock near a local midnight (tests/clock.py): far from one it is the real clock;
near one it goes back clear of every test zone's midnight, history and time ahead included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

from .clock import AHEAD, HISTORY, ZONES, clear_of_midnight, steady_clock


def local_days(moment: datetime) -> set:
    """The business days of every test zone between `moment - HISTORY` and `moment + AHEAD`."""
    return {
        (zone, (moment + shift).astimezone(ZoneInfo(zone)).date())
        for zone in ZONES
        for shift in (-HISTORY, timedelta(0), AHEAD)
    }


def one_day_each(moment: datetime) -> bool:
    return len(local_days(moment)) == len(ZONES)


def test_far_from_any_midnight_the_clock_stays():
    noon_in_jakarta = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    assert clear_of_midnight(noon_in_jakarta) == noon_in_jakarta
    with time_machine.travel(noon_in_jakarta, tick=False), steady_clock() as now:
        assert now == noon_in_jakarta == datetime.now(UTC)


def test_near_a_midnight_the_clock_goes_back_clear_of_every_zone():
    # every minute of a day: the clock never moves forward, and never more than a few hours
    start = datetime(2026, 12, 4, tzinfo=UTC)
    moved = 0
    for minute in range(0, 24 * 60, 1):
        now = start + timedelta(minutes=minute)
        moment = clear_of_midnight(now)
        assert moment <= now and now - moment < timedelta(hours=4), now
        assert one_day_each(moment), now
        moved += moment != now
    assert 0 < moved < 24 * 60  # only near midnights

    just_after = datetime(2026, 12, 4, 17, 0, 20, tzinfo=UTC)  # 00:00:20 in Jakarta
    assert not one_day_each(just_after)
    with time_machine.travel(just_after, tick=False), steady_clock() as now:
        assert datetime.now(UTC) == now < just_after and one_day_each(now)
