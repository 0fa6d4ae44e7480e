"""The quoted wait as customers read it ("10-15 min"), in the request's language."""

from __future__ import annotations

from flask_babel import gettext as _

from .estimator import Estimate, friendly_range


def range_text(estimate: Estimate) -> str:
    low, high = friendly_range(estimate.low_s, estimate.high_s)
    if high <= 1:
        return _("Less than a minute")
    if low == 0:
        return _("Up to %(high)d min", high=high)
    return _("%(low)d-%(high)d min", low=low, high=high)
