"""What an API token may be used for: its scopes.

A token can do what BOTH its scopes and its user's role and branches allow: the scope is
checked first (`api/auth.staff_endpoint(..., scope=...)`, 403 `missing_scope` naming the scope),
then the same role and branch checks as without scopes. A scope never widens what the user
may do.

Every staff endpoint of API v1 declares exactly one scope, and the OpenAPI document says which
(`security: [{"bearerAuth": ["<scope>"]}]`).
"""

from __future__ import annotations

# scope -> what it allows (the API's staff endpoints)
SCOPES: dict[str, str] = {
    "tickets:read": "the waiting list and the counters of a branch",
    "tickets:write": "open, pause and close counters; call, serve, transfer and cancel "
    "tickets; issue VIP and staff tickets",
    "feedback:read": "the feedback metrics (NPS, CSAT, CES) of a branch",
    "cases:read": "list and read cases",
    "cases:write": "acknowledge, contact, note, reassign and resolve cases",
    "alerts:read": "alert rules and alerts",
    "alerts:write": "create, change and delete alert rules; acknowledge alerts",
    "reports:read": "reports and staffing advice",
    "settings:read": "a branch's settings",
    "settings:write": "change a branch's settings",
    "exports:read": "CSV exports of visits, feedback and cases (for the data warehouse)",
}
ALL_SCOPES: tuple[str, ...] = tuple(SCOPES)

# What the tokens that existed before scopes (migration 0013) were given: everything the API
# let them do then. The exports came with scopes: an old token does not gain them silently.
LEGACY_SCOPES: tuple[str, ...] = tuple(s for s in ALL_SCOPES if s != "exports:read")


class UnknownScope(ValueError):
    pass


def normalise(scopes) -> list[str]:
    """The scopes as a sorted list without duplicates; `UnknownScope` for a name not in SCOPES.

    `None` means every scope."""
    if scopes is None:
        return sorted(ALL_SCOPES)
    names = sorted({str(s).strip() for s in scopes if str(s).strip()})
    unknown = [n for n in names if n not in SCOPES]
    if unknown:
        raise UnknownScope(", ".join(unknown))
    if not names:
        raise UnknownScope("a token needs at least one scope")
    return names
