"""Busy hours on the branch and join pages: the context of the insights partial
(`templates/insights/_busy.html`, built by `insights.queries.busy_context`) for one service,
the one chosen with `?service=` or the branch's first, and the other services to switch to."""

from __future__ import annotations

from ..insights import queries
from .common import current_lang


def busy_context(branch, now, service_code: str | None = None) -> dict:
    services = [s for s in branch.services if s.active]
    if not services:
        return {"busy": None, "busy_services": [], "busy_service": None}
    chosen = next((s for s in services if s.code == service_code), services[0])
    lang = current_lang()
    return {
        "busy": queries.busy_context(branch, chosen, now=now, locale=lang),
        "busy_services": [(s.code, s.display_name(lang)) for s in services],
        "busy_service": chosen.code,
    }
