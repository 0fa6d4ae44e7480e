"""The success answers of API v1 are what the OpenAPI document says, checked by schemathesis.

`test_api_schemathesis.py` generates requests, and most of them are refused (they are meant
to be): for many operations none of its requests succeeds, so the documented shape of their
success answers would go unchecked. Here a customer's visit and the staff's work on it go
through the API the way a real day does, and each answer (2xx as expected) passes the same
schemathesis checks: documented status, content type and schema.
"""

from datetime import UTC, datetime, timedelta

import pytest

from queue_app.extensions import db

from .apihelp import API
from .test_api_schemathesis import CHECKS, free_slots, schema


@pytest.fixture
def conform(app, client):
    """Send a request through the document's operation and check the answer."""

    def send(method, path, status, *, headers=None, query=None, body=None, **path_parameters):
        operation = schema[f"{API}{path}"][method]
        case = operation.Case(
            path_parameters=path_parameters,
            query=query or {},
            headers=dict(headers or {}),
            **({"body": body} if body is not None else {}),
        )
        db.session.commit()
        with app.app_context():
            response = case.call(app=app)
        assert response.status_code == status, (method, path, response.text[:500])
        case.validate_response(response, checks=CHECKS)
        return response.json() if b"{" in response.content[:1] else None

    return send


def test_a_visit_and_the_work_on_it_answer_as_documented(conform, client, floor):
    staff, manager = floor.h_staff, floor.h_manager
    teller = floor.counter_id("Teller 1")
    t1, t2, t3 = (
        conform("POST", "/branches/{code}/tickets", 201, code="JKT01", body={"service": "teller"})
        for _ in range(3)
    )
    conform("GET", "/branches/{code}/counters", 200, headers=staff, code="JKT01")
    conform("POST", "/counters/{counter_id}/open", 200, headers=staff, counter_id=teller)
    tid = "/tickets/{ticket_id}"
    conform(
        "POST", tid + "/call", 200, headers=staff, ticket_id=t1["id"], body={"counter_id": teller}
    )
    conform("POST", tid + "/start", 200, headers=staff, ticket_id=t1["id"])
    conform(
        "POST", tid + "/transfer", 200, headers=staff, ticket_id=t1["id"], body={"service": "cs"}
    )
    called = conform(
        "POST", "/counters/{counter_id}/call-next", 200, headers=staff, counter_id=teller
    )
    assert called["id"] == t2["id"]
    conform("POST", tid + "/no-show", 200, headers=staff, ticket_id=t2["id"])
    conform("POST", "/counters/{counter_id}/call-next", 200, headers=staff, counter_id=teller)
    conform("POST", tid + "/hold", 200, headers=staff, ticket_id=t3["id"])
    conform("POST", tid + "/resume", 200, headers=staff, ticket_id=t3["id"])
    conform("POST", "/counters/{counter_id}/call-next", 200, headers=staff, counter_id=teller)
    conform("POST", tid + "/start", 200, headers=staff, ticket_id=t3["id"])
    done = {"outcome": "done", "note": "selesai"}
    conform("POST", tid + "/finish", 200, headers=staff, ticket_id=t3["id"], body=done)
    conform(
        "POST",
        "/counters/{counter_id}/pause",
        200,
        headers=staff,
        counter_id=teller,
        body={"reason": "istirahat"},
    )

    # the customer rates the visit badly: a case for the manager
    rating = {"nps": 1, "comment": "Lama sekali"}
    conform("POST", "/tickets/{token}/feedback", 201, token=t3["token"], body=rating)
    [case] = conform("GET", "/cases", 200, headers=manager)["items"]
    conform("POST", "/cases/{case_id}/acknowledge", 200, headers=manager, case_id=case["id"])

    conform("GET", "/branches/{code}/settings", 200, headers=manager, code="JKT01")
    patch = {"services": {"teller": {"bookable_percent": 100}}}
    conform("PATCH", "/branches/{code}/settings", 200, headers=manager, code="JKT01", body=patch)
    today = datetime.now(UTC).date()
    period = {"from": str(today - timedelta(days=7)), "to": str(today)}
    conform("GET", "/branches/{code}/metrics", 200, headers=manager, code="JKT01", query=period)
    conform(
        "GET",
        "/reports/staffing",
        200,
        headers=manager,
        query={"branch": "JKT01", "date": str(today)},
    )
    conform("GET", "/exports/visits.csv", 200, headers=floor.h_admin, query=period)

    rule = {"metric": "queue_length", "raise_at": 1, "clear_at": 0}
    conform("POST", "/branches/{code}/alert-rules", 201, headers=manager, code="JKT01", body=rule)
    conform("GET", "/branches/{code}/alert-rules", 200, headers=manager, code="JKT01")
    conform("POST", "/branches/{code}/tickets", 201, code="JKT01", body={"service": "teller"})

    free = free_slots(client, today)
    booking = {
        "service": "teller",
        "start": free[0],
        "customer": {"name": "Ibu Rina", "email": "rina@example.co.id"},
    }
    booked = conform("POST", "/branches/{code}/appointments", 201, code="JKT01", body=booking)
    move = {"token": booked["manage_token"], "start": free[1]}
    conform(
        "POST",
        "/appointments/{booking_code}/reschedule",
        200,
        booking_code=booked["code"],
        body=move,
    )
