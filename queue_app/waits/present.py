"""The estimated wait as the customer pages show it, from the fields every payload carries
(`estimated_wait_s`, `estimated_wait_range`, made by `waits.live.wire`): the server renders the
same words (`waits/text.py`) that the tracking page and the lobby display write from a live
push with `range_patterns` (`QueueFloor.waitRange` in static/js/floor.js)."""

from __future__ import annotations

from flask_babel import gettext as _

from .estimator import Estimate
from .text import range_text

_LOW, _HIGH = 987001, 987002  # markers: the script fills in the minutes it computes


def estimate_of(fields: dict) -> Estimate | None:
    """The `Estimate` a payload's fields describe; None: no estimate."""
    seconds = fields.get("estimated_wait_s")
    if seconds is None:
        return None
    span = fields.get("estimated_wait_range") or {"low_s": seconds, "high_s": seconds}
    return Estimate(
        mean_s=float(seconds),
        low_s=float(span["low_s"]),
        high_s=float(span["high_s"]),
        called_share=1.0,
    )


def wait_text(fields: dict) -> str | None:
    """The range ("10-15 min") in the request's language; None: no estimate."""
    est = estimate_of(fields)
    return None if est is None else range_text(est)


def range_patterns() -> dict:
    """`range_text`'s three wordings with `{low}`/`{high}` for the script."""
    return {
        "range": _("%(low)d-%(high)d min", low=_LOW, high=_HIGH)
        .replace(str(_LOW), "{low}")
        .replace(str(_HIGH), "{high}"),
        "up_to": _("Up to %(high)d min", high=_HIGH).replace(str(_HIGH), "{high}"),
        "under_minute": _("Less than a minute"),
    }
