"""Who may do what: every HTTP endpoint (every rule of `app.url_map` and each of its methods,
static files aside) and every way of joining the Socket.IO namespace `/floor`, tried by every
audience, each allowed or refused exactly as designed.

The tables below are the design (docs/architecture.md "Who may do what", docs/realtime.md "Who
gets which room", the access helpers `auth/access.py`, `api/auth.py`, `dashboard/scope.py`,
`feedback/metric_queries.readable_branches`), not a recording of what the code answers today.
An endpoint without a row fails `test_every_endpoint_has_a_row`: whoever adds an endpoint says
here who may use it.

Allowed means the request passes the access check: it may still be refused for its body or
the state of what it names (400, 404, 409, 422, a redirect elsewhere than to the sign-in
page), never 401, 403, the sign-in page or the pairing screen (nor a 5xx or a 429). Refused
means exactly the refusal of the row. URLs name real objects of this branch (JKT01): a counter,
a ticket, an alert and its rule, a case, devices; `staff_other` works at another branch.

Audiences (tests/authz.py): `anonymous`; `customer` (holds a visit's secrets: its ticket token,
an appointment's booking code and links, a rating link, a case's recovery link; everybody else
asks with look-alike secrets of nobody); paired devices `kiosk`, `display`, `tablet` (a feedback
tablet at a counter); people signed in through the sign-in form, with their own bearer token on
`/api/`: `staff` (this branch), `staff_other` (another branch), `manager` (this branch),
`manager_other` (another branch),
`cx_agent` (belongs to another branch), `executive`, `admin`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import pytest

from queue_app.devices.models import DeviceKind
from queue_app.extensions import db, socketio
from queue_app.realtime import NAMESPACE, pusher
from queue_app.tickets import remote

from . import authz
from .apihelp import fast_passwords
from .authz import (
    ADMIN,
    AUDIENCES,
    CUSTOMER,
    CX_AGENT,
    DISPLAY,
    EXECUTIVE,
    KIOSK,
    LOOKALIKE,
    MANAGER,
    MANAGER_OTHER,
    NOT_SIGNED_IN,
    PEOPLE,
    STAFF,
    STAFF_OTHER,
    TABLET,
)
from .clock import steady_clock

LOGIN = "sign-in page"  # a redirect to /auth/login
PAIRING = "pairing screen"  # a browser that is no paired device of the page's kind


@dataclass(frozen=True)
class Row:
    """Who passes the access check of one endpoint, and what the others get."""

    allowed: frozenset
    refused: dict = field(default_factory=dict)
    signs_out: bool = False  # the sign-out ends on the sign-in page, for everybody

    def expected(self, audience: str):
        return None if audience in self.allowed else self.refused[audience]


def _row(allowed, not_signed_in, people, overrides, **extra) -> Row:
    allowed = frozenset(allowed)
    refused = {}
    for audience in AUDIENCES:
        if audience not in allowed:
            refused[audience] = not_signed_in if audience in NOT_SIGNED_IN else people
    for audience, refusal in overrides.items():
        assert audience in refused, f"{audience} is allowed and refused at once"
        refused[audience] = refusal
    return Row(allowed, refused, **extra)


def public(**extra) -> Row:
    """Anybody, signed in or not."""
    return Row(frozenset(AUDIENCES), **extra)


def holder() -> Row:
    """The holder of the customer's secret named in the URL; a wrong secret is unknown (404),
    whoever asks: a session, a device or a token gives nothing here."""
    return _row({CUSTOMER}, 404, 404, {})


def api(*allowed, **overrides) -> Row:
    """The API with a bearer token: no token 401, a token of someone else 403."""
    return _row(allowed, 401, 403, overrides)


def page(*allowed, **overrides) -> Row:
    """A page for signed-in people: the others go to the sign-in page, the wrong person
    gets a 403 page."""
    return _row(allowed, LOGIN, 403, overrides)


def floor_action(*allowed) -> Row:
    """A POST of the counter screen (fetched by its script): 401 when not signed in."""
    return _row(allowed, 401, 403, {})


def device_page(audience) -> Row:
    """A page of a paired device: any other browser gets the pairing screen."""
    return _row({audience}, PAIRING, PAIRING, {})


def device_json(audience) -> Row:
    """JSON fetched by a paired device's page: 403 `device_not_paired` for anyone else."""
    return _row({audience}, 403, 403, {})


# who is who, in the design's words
FLOOR = (STAFF, MANAGER, ADMIN)  # `User.can_work_floor` (FLOOR_ROLES, of the branch)
VIEW = (STAFF, MANAGER, EXECUTIVE, ADMIN)  # `User.can_view`: the branch's people + network roles
CX = (MANAGER, CX_AGENT, EXECUTIVE, ADMIN)  # CX pages, cases, reports, dashboard (CX_ROLES)
MANAGE = (MANAGER, ADMIN)  # devices, branch settings, alert rules, the entrance poster
# pages and lists that name no branch show each reader their own branches: a manager of another
# branch passes (and sees only theirs: the branch-scoped tests of each package check that)
CX_ANY = (*CX, MANAGER_OTHER)
MANAGE_ANY = (*MANAGE, MANAGER_OTHER)

HTTP = {
    # --- web, sign-in ------------------------------------------------------------------
    ("web.index", "GET"): public(),
    ("web.switch_language", "GET"): public(),
    ("web.healthz", "GET"): public(),
    ("web.readyz", "GET"): public(),
    ("auth.login", "GET"): public(),
    ("auth.login", "POST"): public(),
    ("auth.logout", "GET"): public(),  # 405 "use the button"
    ("auth.logout", "POST"): public(signs_out=True),
    # --- devices, kiosk, display, feedback tablet ----------------------------------------
    ("devices.status", "GET"): public(),
    ("devices.kiosk", "GET"): device_page(KIOSK),
    ("devices.display", "GET"): device_page(DISPLAY),
    ("kiosk.start", "GET"): device_page(KIOSK),
    ("kiosk.choose_service", "GET"): device_page(KIOSK),
    ("kiosk.identify", "GET"): device_page(KIOSK),
    ("kiosk.issue", "POST"): device_page(KIOSK),
    ("kiosk.ticket", "GET"): device_page(KIOSK),
    ("kiosk.booking", "GET"): device_page(KIOSK),
    ("kiosk.booking", "POST"): device_page(KIOSK),
    ("display.index", "GET"): device_page(DISPLAY),
    ("feedback_tablet.index", "GET"): device_page(TABLET),
    ("feedback_tablet.state", "GET"): device_json(TABLET),
    ("feedback_tablet.rate", "POST"): device_json(TABLET),
    # --- the customer's phone ----------------------------------------------------------
    ("mobile.branch", "GET"): public(),
    ("mobile.join", "GET"): public(),
    ("mobile.join", "POST"): public(),
    ("mobile.verify", "GET"): public(),
    ("mobile.verify", "POST"): public(),
    ("mobile.here", "GET"): public(),
    ("mobile.here_confirm", "POST"): public(),
    ("mobile.poster", "GET"): page(*MANAGE),  # carries the branch's secret arrival key
    ("mobile.track", "GET"): holder(),
    ("mobile.leave", "GET"): holder(),
    ("mobile.leave", "POST"): holder(),
    ("booking_pages.start", "GET"): public(),
    ("booking_pages.slots", "GET"): public(),
    ("booking_pages.hold", "POST"): public(),
    ("booking_pages.details", "GET"): holder(),  # the hold's token
    ("booking_pages.confirm", "POST"): holder(),
    ("booking_pages.manage", "GET"): holder(),  # the signed manage link
    ("booking_pages.booked", "GET"): holder(),
    ("booking_pages.calendar", "GET"): holder(),
    ("booking_pages.cancel_confirm", "GET"): holder(),
    ("booking_pages.cancel", "POST"): holder(),
    ("booking_pages.reschedule_choose", "GET"): holder(),
    ("booking_pages.reschedule", "POST"): holder(),
    ("feedback_pages.by_token", "GET"): holder(),
    ("feedback_pages.by_token", "POST"): holder(),
    ("feedback_pages.token_thanks", "GET"): holder(),
    ("feedback_pages.by_link", "GET"): holder(),  # the signed rating link
    ("feedback_pages.by_link", "POST"): holder(),
    ("feedback_pages.link_thanks", "GET"): holder(),
    ("case_recovery.question", "GET"): holder(),  # the signed recovery link
    ("case_recovery.answer", "POST"): holder(),
    # --- counter screen ----------------------------------------------------------------
    # the picker: anyone who works some floor (the other branch's people at their own branch)
    ("counter.index", "GET"): page(*FLOOR, STAFF_OTHER, MANAGER_OTHER),
    ("counter.screen", "GET"): page(*FLOOR),
    ("counter.state", "GET"): page(*FLOOR),
    ("counter.open_counter", "POST"): floor_action(*FLOOR),
    ("counter.pause_counter", "POST"): floor_action(*FLOOR),
    ("counter.close_counter", "POST"): floor_action(*FLOOR),
    ("counter.call_next", "POST"): floor_action(*FLOOR),
    ("counter.ticket_action", "POST"): floor_action(*FLOOR),
    # --- admin pages -------------------------------------------------------------------
    ("admin.devices", "GET"): page(*MANAGE_ANY),
    ("admin.pair", "POST"): page(*MANAGE_ANY),
    ("admin.revoke", "POST"): page(*MANAGE),
    ("admin.branch_settings", "GET"): page(*MANAGE),
    ("admin.save_branch_settings", "POST"): page(*MANAGE),
    ("admin.branch_alerts", "GET"): page(*MANAGE),
    ("admin.create_alert_rule", "POST"): page(*MANAGE),
    ("admin.update_alert_rule", "POST"): page(*MANAGE),
    ("admin.delete_alert_rule", "POST"): page(*MANAGE),
    # webhooks reach the bank's other systems with the network's data: admins only
    ("admin.webhooks_page", "GET"): page(ADMIN),
    ("admin.create_webhook", "POST"): page(ADMIN),
    ("admin.edit_webhook", "GET"): page(ADMIN),
    ("admin.update_webhook", "POST"): page(ADMIN),
    ("admin.rotate_webhook_secret", "POST"): page(ADMIN),
    ("admin.webhook_deliveries", "GET"): page(ADMIN),
    ("admin.replay_webhook_delivery", "POST"): page(ADMIN),
    # --- CX pages, dashboard, reports --------------------------------------------------
    ("cx.metrics", "GET"): page(*CX_ANY),
    ("cx.cases_list", "GET"): page(*CX_ANY),
    ("cx.case_detail", "GET"): page(*CX),
    ("cx.case_acknowledge", "POST"): page(*CX),
    ("cx.case_contact", "POST"): page(*CX),
    ("cx.case_note", "POST"): page(*CX),
    ("cx.case_reassign", "POST"): page(*CX),
    ("cx.case_resolve", "POST"): page(*CX),
    ("cx.review", "GET"): page(*CX_ANY),
    ("cx.review_csv", "GET"): page(*CX_ANY),
    ("cx.review_pdf", "GET"): page(*CX_ANY),
    ("dashboard.overview", "GET"): page(*CX_ANY),
    ("dashboard.overview_state", "GET"): page(*CX_ANY),
    ("dashboard.branch", "GET"): page(*CX),
    ("dashboard.branch_state", "GET"): page(*CX),
    ("dashboard.acknowledge", "POST"): page(*MANAGE),  # scope.ACK_ROLES
    ("report_pages.report", "GET"): page(*CX_ANY),
    ("report_pages.report_csv", "GET"): page(*CX_ANY),
    ("report_pages.report_xlsx", "GET"): page(*CX_ANY),
    ("report_pages.staffing", "GET"): page(*CX_ANY),
    ("audit.index", "GET"): page(*MANAGE_ANY),  # admins every entry, managers their branches'
    # --- API: public -------------------------------------------------------------------
    ("meta.index", "GET"): public(),
    ("api-docs.openapi_json", "GET"): public(),
    ("api-docs.openapi_swagger_ui", "GET"): public(),
    ("branches.list_branches", "GET"): public(),
    ("branches.get_branch", "GET"): public(),
    ("branches.list_services", "GET"): public(),
    ("branches.issue_ticket", "POST"): public(),  # a token only for priority or source
    ("insights.busy_hours", "GET"): public(),
    ("remote.get_intake", "GET"): public(),
    ("remote.request_code", "POST"): public(),
    ("remote.join", "POST"): public(),
    ("appointments.list_slots", "GET"): public(),
    ("appointments.book_appointment", "POST"): public(),
    # --- API: the customer's secrets -----------------------------------------------------
    ("tickets.follow_ticket", "GET"): holder(),
    ("remote.confirm_arrival", "POST"): holder(),
    ("remote.leave", "POST"): holder(),
    ("feedback.rateable", "GET"): holder(),
    ("feedback.post_feedback", "POST"): holder(),
    ("appointments.get_appointment", "GET"): holder(),  # the booking code
    ("appointments.check_in", "POST"): holder(),
    ("appointments.cancel_appointment", "POST"): holder(),  # + the manage token in the body
    ("appointments.reschedule_appointment", "POST"): holder(),
    # --- API: staff tokens -------------------------------------------------------------
    ("branches.list_counters", "GET"): api(*VIEW),
    ("branches.waiting_list", "GET"): api(*VIEW),
    ("counters.open_counter", "POST"): api(*FLOOR),
    ("counters.pause_counter", "POST"): api(*FLOOR),
    ("counters.close_counter", "POST"): api(*FLOOR),
    ("counters.call_next", "POST"): api(*FLOOR),
    ("tickets.call", "POST"): api(*FLOOR),
    ("tickets.start", "POST"): api(*FLOOR),
    ("tickets.finish", "POST"): api(*FLOOR),
    ("tickets.recall", "POST"): api(*FLOOR),
    ("tickets.no_show", "POST"): api(*FLOOR),
    ("tickets.transfer", "POST"): api(*FLOOR),
    ("tickets.hold", "POST"): api(*FLOOR),
    ("tickets.resume", "POST"): api(*FLOOR),
    ("tickets.cancel", "POST"): api(*FLOOR),
    ("settings.get_settings", "GET"): api(*MANAGE),
    ("settings.patch_settings", "PATCH"): api(*MANAGE),
    ("alerts.list_rules", "GET"): api(*MANAGE),
    ("alerts.create_rule", "POST"): api(*MANAGE),
    ("alerts.patch_rule", "PATCH"): api(*MANAGE),
    ("alerts.delete_rule", "DELETE"): api(*MANAGE),
    ("alerts.list_alerts", "GET"): api(*CX_ANY),
    ("alerts.get_alert", "GET"): api(*CX),
    ("alerts.acknowledge", "POST"): api(*MANAGE),
    ("cases.list_cases", "GET"): api(*CX_ANY),
    ("cases.get_case", "GET"): api(*CX),
    ("cases.acknowledge", "POST"): api(*CX),
    ("cases.log_contact", "POST"): api(*CX),
    ("cases.add_note", "POST"): api(*CX),
    ("cases.reassign", "POST"): api(*CX),
    ("cases.resolve", "POST"): api(*CX),
    # feedback metrics through the API: the CX readers, and staff of the branch
    ("metrics.branch_metrics", "GET"): api(*CX, STAFF),
    ("reports.report", "GET"): api(*CX_ANY),
    ("reports.staffing_advice", "GET"): api(*CX),
    # CSV for the warehouse (scope exports:read): the reports' readers
    ("exports.export_visits", "GET"): api(*CX_ANY),
    ("exports.export_feedback", "GET"): api(*CX_ANY),
    ("exports.export_cases", "GET"): api(*CX_ANY),
    # --- operations --------------------------------------------------------------------
    # Prometheus: only the scraper's METRICS_TOKEN (and/or METRICS_ALLOW addresses); no
    # person's session or token opens it
    ("observability.metrics", "GET"): _row((), 401, 401, {}),
}


# The API parses its input before it checks who may do it (a view "parses input, checks
# access, calls one service"): these endpoints get a body or query that parses, so that the
# access check is what answers. A callable takes (world, audience).
def _today(world) -> str:
    return world.branch.business_day(authz.utcnow()).isoformat()


def _manage_token(world, audience) -> str:
    return world.manage_token if audience == CUSTOMER else LOOKALIKE["signed"]


QUERY = {
    "devices.status": lambda w, a: "kind=display",
    "metrics.branch_metrics": lambda w, a: f"from={_today(w)}&to={_today(w)}",
    "reports.report": lambda w, a: f"date={_today(w)}",
    "reports.staffing_advice": lambda w, a: f"branch={w.branch.code}&date={_today(w)}",
    "exports.export_visits": lambda w, a: f"from={_today(w)}&to={_today(w)}",
    "exports.export_feedback": lambda w, a: f"from={_today(w)}&to={_today(w)}",
    "exports.export_cases": lambda w, a: f"from={_today(w)}&to={_today(w)}",
}
BODY = {
    "alerts.create_rule": lambda w, a: {"metric": "ewt_s", "raise_at": 3600, "clear_at": 600},
    "cases.add_note": lambda w, a: {"note": "matrix"},
    "cases.log_contact": lambda w, a: {"reached": False, "channel": "phone"},
    "cases.resolve": lambda w, a: {
        "root_cause": "process",
        "reason_code": "other",
        "action_taken": "matrix",
    },
    "remote.confirm_arrival": lambda w, a: {"key": remote.arrival_key(w.branch)},
    "appointments.cancel_appointment": lambda w, a: {"token": _manage_token(w, a)},
    "appointments.reschedule_appointment": lambda w, a: {
        "token": _manage_token(w, a),
        "start": w.appointment.start.isoformat(),
    },
}

# endpoints whose request would destroy or take the object its URL names: a new one per
# request (an alert rule to delete, a device to revoke, a counter nobody operates yet)
FRESH = {"admin.delete_alert_rule", "alerts.delete_rule", "admin.revoke"}
FRESH_COUNTER = {
    "counter.open_counter",
    "counter.pause_counter",
    "counter.close_counter",
    "counter.call_next",
    "counters.open_counter",
    "counters.pause_counter",
    "counters.close_counter",
    "counters.call_next",
}

# slow work after the access check that proves nothing here: stubbed
STUBS = {"cx.review_pdf": {"weasyprint.HTML.write_pdf": lambda self, *a, **k: b"%PDF-1.7\n"}}

# configuration some endpoints need to be on at all
CONFIG = {
    # the scraper's own bearer token: nobody of the matrix holds it
    "observability.metrics": {"METRICS_TOKEN": "metrics-scraper-secret"},
}


def _rule_methods(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def test_every_endpoint_has_a_row(app):
    """A new endpoint (or method) without a row here fails, and so does a row left behind."""
    served = {(rule.endpoint, method) for rule, method in _rule_methods(app)}
    missing = sorted(served - set(HTTP))
    assert not missing, "endpoints without a row in the authorization matrix: " + ", ".join(
        f"{method} {endpoint}" for endpoint, method in missing
    )
    stale = sorted(set(HTTP) - served)
    assert not stale, f"rows for endpoints that no longer exist: {stale}"


def test_the_rows_cover_every_audience():
    for key, row in HTTP.items():
        assert row.allowed | set(row.refused) == set(AUDIENCES), key
        assert not row.allowed & set(row.refused), key


# --- the world ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(app):
    from .conftest import empty_database

    # the world's history (minutes ago) and every request of the module in one business day
    with steady_clock(), app.app_context(), pytest.MonkeyPatch.context() as mp:
        empty_database()
        fast_passwords(mp)
        yield authz.build_world(app)
        db.session.rollback()
        empty_database()


TOKEN_OF = {
    "booking_pages.details": "hold_token",
    "booking_pages.confirm": "hold_token",
    "case_recovery.question": "recovery_token",
    "case_recovery.answer": "recovery_token",
    "feedback_pages.by_token": "rated_token",
    "feedback_pages.token_thanks": "rated_token",
    "feedback.rateable": "rated_token",
    "feedback.post_feedback": "rated_token",
}


def _value(world, endpoint: str, arg: str, audience: str, cleanup: list):
    holder = audience == CUSTOMER
    if arg == "token":
        name = TOKEN_OF.get(endpoint)
        if name is None and endpoint.startswith("booking_pages."):
            name = "manage_token"
        name = name or "visit_token"
        if holder:
            return getattr(world, name)
        return LOOKALIKE["visit"] if name in ("visit_token", "rated_token") else LOOKALIKE["signed"]
    if arg == "signed":
        return world.rating_link if holder else LOOKALIKE["signed"]
    if arg == "booking_code":
        return world.appointment.code if holder else LOOKALIKE["booking_code"]
    if arg == "code":
        return "en" if endpoint == "web.switch_language" else world.branch.code
    if arg == "branch_code":
        return world.branch.code
    if arg == "counter_id":
        if endpoint in FRESH_COUNTER:
            return authz.fresh_counter(world.branch).id
        return world.counter.id
    if arg == "ticket_id":
        return (world.kiosk_ticket if endpoint == "kiosk.ticket" else world.ticket).id
    if arg == "service":
        return "teller"
    if arg == "rule_id":
        if endpoint in FRESH:
            rule = authz.fresh_rule(world.branch)
            cleanup.append(lambda rule_id=rule.id: authz.drop_rule(rule_id))
            return rule.id
        return world.rule.id
    if arg == "alert_id":
        return world.alert.id
    if arg == "case_id":
        return world.case.id
    if arg == "device_id":
        if endpoint in FRESH:
            device, _ = authz.paired_device(
                DeviceKind.DISPLAY, world.branch, now=authz.utcnow(), name="Spare TV"
            )
            db.session.commit()
            return device.id
        return world.device.id
    if arg == "endpoint_id":
        return world.webhook.id
    if arg == "delivery_id":
        return world.delivery.id
    if arg == "lang":
        return "id"
    if arg == "action":
        return "start"
    raise AssertionError(f"{endpoint}: no value for the URL parameter {arg!r}: add one")


ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def outcome(response):
    """What the audience got: the sign-in page, the pairing screen, or the status."""
    location = urlparse(response.headers.get("Location", "")).path
    if response.status_code in (301, 302, 303, 307, 308) and location == "/auth/login":
        return LOGIN
    if response.status_code == 200 and response.mimetype == "text/html":
        body = response.get_data(as_text=True)
        if 'class="pairing"' in body and "/devices/status" in body:
            return PAIRING
    return response.status_code


def request_as(app, world, rule, method: str, audience: str):
    creds = world.credentials[audience]
    cleanup: list = []
    try:
        path = ARG.sub(
            lambda m: quote(
                str(_value(world, rule.endpoint, m.group(1), audience, cleanup)), safe=""
            ),
            rule.rule,
        )
        if rule.endpoint in QUERY:
            path += "?" + QUERY[rule.endpoint](world, audience)
        kwargs = {"headers": {}, "buffered": True}  # streamed bodies read in the request
        api_call = path.startswith("/api/")
        if api_call and creds.bearer:
            kwargs["headers"]["Authorization"] = f"Bearer {creds.bearer}"
        if method != "GET":
            if api_call:
                kwargs["json"] = BODY.get(rule.endpoint, lambda w, a: {})(world, audience)
            else:
                kwargs["data"] = {"csrf_token": creds.csrf}
        client = authz.client_of(app, creds)
        response = client.open(path, method=method, **kwargs)
        return path, response
    finally:
        for undo in cleanup:
            undo()


def check(row: Row, audience: str, response):
    """None when the response is what the row says, else what went wrong."""
    got = outcome(response)
    want = row.expected(audience)
    status = response.status_code
    if want is None:
        refusals = {401, 403, PAIRING} | (set() if row.signs_out else {LOGIN})
        if got in refusals or status >= 500 or status == 429:
            return f"allowed, but got {got}"
        return None
    if got != want:
        return f"refused with {want}, but got {got}"
    return None


@pytest.mark.parametrize(
    "endpoint, method", sorted(HTTP), ids=[f"{m} {e}" for e, m in sorted(HTTP)]
)
def test_http(app, world, monkeypatch, endpoint, method):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint and method in r.methods]
    assert rules, f"no rule serves {method} {endpoint}"
    row = HTTP[(endpoint, method)]
    for key, value in CONFIG.get(endpoint, {}).items():
        monkeypatch.setitem(app.config, key, value)
    for target, stub in STUBS.get(endpoint, {}).items():
        monkeypatch.setattr(target, stub)
    wrong = []
    for rule in rules:
        for audience in AUDIENCES:
            path, response = request_as(app, world, rule, method, audience)
            problem = check(row, audience, response)
            if problem:
                body = response.get_data(as_text=True)[:160].replace("\n", " ")
                wrong.append(f"{audience}: {method} {path}: {problem} ({body})")
    assert not wrong, "\n".join(wrong)


def test_a_signed_in_session_is_no_api_credential(app, world):
    """The API authenticates with bearer tokens only: the session cookie of a person who may
    do it gives nothing there (no cross-site request can use the API as that person)."""
    creds = world.credentials[ADMIN]
    client = authz.client_of(app, creds)
    for path, method in (
        (f"/api/v1/branches/{world.branch.code}/queue", "GET"),
        (f"/api/v1/counters/{world.counter.id}/open", "POST"),
        ("/api/v1/cases", "GET"),
    ):
        response = client.open(path, method=method, json={} if method == "POST" else None)
        assert response.status_code == 401, (path, response.status_code)


# `POST /api/v1/branches/<code>/tickets` is public, but a VIP ticket needs a staff token of
# the branch: the one endpoint whose access depends on its body
VIP_TICKET = {
    **dict.fromkeys(NOT_SIGNED_IN, 401),
    **dict.fromkeys((STAFF_OTHER, MANAGER_OTHER, CX_AGENT, EXECUTIVE), 403),
    **dict.fromkeys(FLOOR, 201),
}


def test_a_vip_ticket_needs_a_staff_token_of_the_branch(app, world):
    assert set(VIP_TICKET) == set(AUDIENCES)
    wrong = []
    for audience, want in VIP_TICKET.items():
        creds = world.credentials[audience]
        headers = {"Authorization": f"Bearer {creds.bearer}"} if creds.bearer else {}
        response = authz.client_of(app, creds).post(
            f"/api/v1/branches/{world.branch.code}/tickets",
            json={"service": "teller", "priority": "vip"},
            headers=headers,
        )
        if response.status_code != want:
            wrong.append(f"{audience}: {response.status_code}, not {want}")
    assert not wrong, "\n".join(wrong)


def test_look_alike_secrets_are_unknown_to_the_customer_too(app, world):
    """The customer's pages answer the secret, not the person: the customer's browser with a
    secret of nobody gets the same 404 as everybody else."""
    creds = world.credentials[CUSTOMER]
    client = authz.client_of(app, creds)
    for path in (f"/t/{LOOKALIKE['visit']}", f"/api/v1/tickets/{LOOKALIKE['visit']}"):
        assert client.get(path).status_code == 404, path


# --- Socket.IO ---------------------------------------------------------------------------

NS = NAMESPACE
SIGN_IN = "sign_in_required"
NOT_ALLOWED = "not_allowed"
UNKNOWN_TICKET = "unknown_ticket"


@dataclass(frozen=True)
class SocketRow:
    """How a connection presents itself, who joins which audience, and the others' reason."""

    auth: object  # a callable (world, audience) -> the `auth` of the connection
    joined: dict  # audience -> (snapshot audience, room prefix)
    refused: dict  # audience -> connect_error reason


def _socket_row(auth, joined, not_signed_in, people, **overrides) -> SocketRow:
    refused = {}
    for audience in AUDIENCES:
        if audience not in joined:
            refused[audience] = not_signed_in if audience in NOT_SIGNED_IN else people
    refused.update(overrides)
    return SocketRow(auth, joined, refused)


def _ticket_auth(world, audience):
    return {"ticket": world.visit_token if audience == CUSTOMER else LOOKALIKE["visit"]}


SOCKETS = {
    # staff room of a branch: who works its floor or sees it (`can_work_floor`/`can_view`)
    "auth {branch: JKT01}": _socket_row(
        lambda w, a: {"branch": w.branch.code},
        dict.fromkeys(VIEW, ("staff", "staff:")),
        SIGN_IN,
        NOT_ALLOWED,
    ),
    # the live dashboard: its page roles (scope.PAGE_ROLES)
    "auth {dashboard: *}": _socket_row(
        lambda w, a: {"dashboard": "*"},
        dict.fromkeys(CX_ANY, ("dashboard", "dashboard:")),
        SIGN_IN,
        NOT_ALLOWED,
    ),
    "auth {dashboard: JKT01}": _socket_row(
        lambda w, a: {"dashboard": w.branch.code},
        dict.fromkeys(CX, ("dashboard", "dashboard:")),
        SIGN_IN,
        NOT_ALLOWED,
    ),
    # the customer's phone: the visit token is the only key
    "auth {ticket: <visit token>}": _socket_row(
        _ticket_auth, {CUSTOMER: ("ticket", "ticket:")}, UNKNOWN_TICKET, UNKNOWN_TICKET
    ),
    # a paired device, by its cookie
    "no auth (device cookies)": _socket_row(
        lambda w, a: None,
        {
            KIOSK: ("kiosk", "kiosk:"),
            DISPLAY: ("display", "display:"),
            TABLET: ("feedback", "feedback:"),
        },
        NOT_ALLOWED,
        NOT_ALLOWED,
    ),
}


@pytest.fixture
def sockets(app, world):
    """The test application's Socket.IO server (another test may have rebound `socketio`);
    the test client's patches are undone afterwards (see tests/test_realtime.py `rt`)."""
    server = socketio.server = pusher(app).server
    saved = (server.async_handlers, server.eio.async_handlers)
    opened = []
    yield opened
    for client in opened:
        if client.is_connected(NS):
            with app.app_context():
                client.disconnect(NS)
    pusher(app).drain()
    for name in ("_send_packet", "_send_eio_packet"):
        server.__dict__.pop(name, None)
    server.async_handlers, server.eio.async_handlers = saved


def _rooms_of(app, client) -> set[str]:
    server = pusher(app).server
    return {
        room
        for room, members in (server.manager.rooms.get(NS) or {}).items()
        if room and any(e == client.eio_sid for e in members.values())
    }


def _connect(app, world, audience, auth, opened):
    db.session.commit()
    with app.app_context():
        client = authz.ReasonClient(
            app,
            socketio,
            namespace=NS,
            auth=auth,
            flask_test_client=authz.client_of(app, world.credentials[audience]),
        )
    opened.append(client)
    return client


@pytest.mark.parametrize("how", sorted(SOCKETS))
def test_socket(app, world, sockets, how):
    row = SOCKETS[how]
    wrong = []
    for audience in AUDIENCES:
        client = _connect(app, world, audience, row.auth(world, audience), sockets)
        if audience in row.joined:
            kind, prefix = row.joined[audience]
            if not client.is_connected(NS):
                wrong.append(f"{audience}: refused ({client.refusal}), should join {kind}")
                continue
            snaps = [e["args"][0] for e in client.get_received(NS) if e["name"] == "snapshot"]
            if not snaps or snaps[0].get("audience") != kind:
                wrong.append(f"{audience}: no {kind} snapshot on connect: {snaps[:1]}")
            rooms = _rooms_of(app, client)
            if not any(r.startswith(prefix) for r in rooms):
                wrong.append(f"{audience}: rooms {sorted(rooms)}, none {prefix}*")
            with app.app_context():
                asked = client.emit("snapshot", namespace=NS, callback=True)
            if not isinstance(asked, dict) or asked.get("audience") != kind:
                wrong.append(f"{audience}: the snapshot event answered {str(asked)[:80]}")
            # a client cannot name a room
            with app.app_context():
                client.emit("join", {"room": "dashboard:network"}, namespace=NS)
                client.emit("join_room", "staff:1", namespace=NS)
            if _rooms_of(app, client) != rooms:
                wrong.append(f"{audience}: joined rooms it named: {_rooms_of(app, client)}")
        else:
            want = row.refused[audience]
            if client.is_connected(NS):
                wrong.append(f"{audience}: joined {sorted(_rooms_of(app, client))}, not {want}")
            elif client.refusal != want:
                wrong.append(f"{audience}: refused with {client.refusal!r}, not {want!r}")
    assert not wrong, "\n".join(wrong)


def test_socket_rows_cover_every_audience():
    for how, row in SOCKETS.items():
        assert set(row.joined) | set(row.refused) == set(AUDIENCES), how
        assert not set(row.joined) & set(row.refused), how


def test_people_and_devices_are_the_audiences():
    assert set(PEOPLE) | set(NOT_SIGNED_IN) == set(AUDIENCES)
    assert {EXECUTIVE, CX_AGENT, MANAGER, MANAGER_OTHER, ADMIN, STAFF, STAFF_OTHER} == set(PEOPLE)
    assert {KIOSK, DISPLAY, TABLET} < set(NOT_SIGNED_IN)
