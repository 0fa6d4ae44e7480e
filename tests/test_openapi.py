"""The OpenAPI 3 document of API v1: served, valid, complete, and true about security.

The document is generated from the code (flask-smorest). It must describe every /api/v1 route
the application really has, so a new endpoint without documentation fails here; and what it
says about authentication must match what the endpoints do.
"""

import re

import pytest
from openapi_spec_validator import validate

from queue_app.accounts.scopes import SCOPES

from .apihelp import API, build_floor, fast_passwords, issue, ok, post

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
DOC_PATH = f"{API}/openapi.json"


@pytest.fixture
def spec(client):
    response = client.get(DOC_PATH)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _route_to_openapi(rule: str) -> str:
    """/api/v1/tickets/<int:ticket_id>/start -> /api/v1/tickets/{ticket_id}/start"""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "queue_app API"
    assert spec["info"]["version"] == "v1"
    validate(spec)  # raises on any violation of the OpenAPI 3 schema


def test_every_api_route_is_documented_and_nothing_else(app, spec):
    routes = set()
    for rule in app.url_map.iter_rules():
        # the document itself and its browsable page (HTML) are not operations of the API
        if not rule.rule.startswith(API + "/") or rule.endpoint.startswith("api-docs."):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((_route_to_openapi(rule.rule), method.lower()))
    documented = {(path, method) for path, method, _ in _operations(spec)}
    assert routes, "no API routes found"
    assert routes - documented == set(), "routes without documentation"
    assert documented - routes == set(), "documented operations that do not exist"


def test_the_required_endpoints_are_there(spec):
    documented = {(path, method) for path, method, _ in _operations(spec)}
    required = {
        ("/api/v1/branches", "get"),
        ("/api/v1/branches/{code}/services", "get"),
        ("/api/v1/branches/{code}/tickets", "post"),
        ("/api/v1/tickets/{token}", "get"),
        ("/api/v1/branches/{code}/counters", "get"),
        *(
            (f"/api/v1/counters/{{counter_id}}/{action}", "post")
            for action in ("open", "pause", "close", "call-next")
        ),
        *(
            (f"/api/v1/tickets/{{ticket_id}}/{action}", "post")
            for action in (
                "start",
                "finish",
                "recall",
                "no-show",
                "transfer",
                "hold",
                "resume",
                "cancel",
                "call",
            )
        ),
    }
    assert required - documented == set()


STAFF_PATHS = re.compile(
    r"^/api/v1/(counters/\{counter_id\}/.+|tickets/\{ticket_id\}/.+|branches/\{code\}/(counters|queue|settings|metrics)"
    r"|cases(/\{case_id\}(/.+)?)?"
    r"|branches/\{code\}/alert-rules|alert-rules/\{rule_id\}|alerts(/\{alert_id\}(/.+)?)?"
    r"|reports(/staffing)?|exports/(visits|feedback|cases)\.csv)$"
)


def test_staff_endpoints_declare_bearer_security(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    staff = [(p, m, op) for p, m, op in _operations(spec) if STAFF_PATHS.match(p)]
    # 15 floor, 2 settings, 1 metrics, 7 cases, 7 alerts, 2 reports, 3 exports
    assert len(staff) == 37
    for path, method, operation in staff:
        # exactly one requirement: a bearer token with one scope
        security = operation.get("security")
        assert isinstance(security, list) and len(security) == 1, (path, method, security)
        assert list(security[0]) == ["bearerAuth"], (path, method, security)
        (scope,) = security[0]["bearerAuth"]
        assert scope in SCOPES, (path, method, scope)
        said = operation.get("summary", "") + operation.get("description", "")
        assert f"Token scope: `{scope}`." in said, (path, method)
        for status in ("401", "403"):
            assert status in operation["responses"], (path, method, status)


def test_public_endpoints_do_not_require_a_token(spec):
    for path, method, operation in _operations(spec):
        if STAFF_PATHS.match(path):
            continue
        security = operation.get("security")
        # no security at all, or a token that is optional ({} is "no authentication")
        assert security is None or {} in security, (path, method, security)
    issue_op = spec["paths"]["/api/v1/branches/{code}/tickets"]["post"]
    # optional, for VIP and staff tickets
    assert issue_op["security"] == [{}, {"bearerAuth": ["tickets:write"]}]


def test_error_responses_are_documented_with_the_real_error_shape(spec):
    schemas = spec["components"]["schemas"]
    responses = spec["components"]["responses"]
    ref = responses["DEFAULT_ERROR"]["content"]["application/json"]["schema"]["$ref"]
    error = schemas[ref.rsplit("/", 1)[1]]
    assert error["required"] == ["error"]
    detail_ref = error["properties"]["error"]["$ref"]
    detail = schemas[detail_ref.rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message"}
    assert detail["properties"]["code"]["type"] == "string"
    assert detail["properties"]["message"]["type"] == "string"
    assert "fields" in detail["properties"]
    for name in ("UNPROCESSABLE_ENTITY", "UNAUTHORIZED", "NOT_FOUND"):
        assert responses[name]["content"]["application/json"]["schema"]["$ref"] == ref


def test_documented_shapes_of_the_main_answers(spec):
    schemas = spec["components"]["schemas"]

    def response_schema(path, method, status):
        operation = spec["paths"][path][method]
        ref = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]

    def item_schema(listing):
        ref = listing["properties"]["items"]["items"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]

    branch = item_schema(response_schema("/api/v1/branches", "get", "200"))
    assert {"code", "name", "timezone"} <= set(branch["properties"])
    service = item_schema(response_schema("/api/v1/branches/{code}/services", "get", "200"))
    assert {"code", "name", "prefix"} <= set(service["properties"])
    ticket = response_schema("/api/v1/branches/{code}/tickets", "post", "201")
    assert {"id", "number", "token", "status", "position", "estimated_wait_s"} <= set(
        ticket["properties"]
    )
    followed = response_schema("/api/v1/tickets/{token}", "get", "200")
    assert {"number", "status", "position", "estimated_wait_s"} <= set(followed["properties"])
    assert "token" not in followed["properties"]
    counter = item_schema(response_schema("/api/v1/branches/{code}/counters", "get", "200"))
    assert {"id", "name", "services", "status"} <= set(counter["properties"])
    call_next = spec["paths"]["/api/v1/counters/{counter_id}/call-next"]["post"]["responses"]
    assert {"200", "204"} <= set(call_next)
    issue_body = spec["paths"]["/api/v1/branches/{code}/tickets"]["post"]["requestBody"]
    body_ref = issue_body["content"]["application/json"]["schema"]["$ref"]
    assert "service" in schemas[body_ref.rsplit("/", 1)[1]]["required"]


def test_the_documented_security_is_what_the_endpoints_do(client, make, monkeypatch, spec):
    """Every operation that declares a required token answers 401 without one; every other
    operation does not ask for one."""
    fast_passwords(monkeypatch)
    floor = build_floor(make)
    ticket = issue(client, "teller")
    values = {
        "code": "JKT01",
        "counter_id": str(floor.counter_id("Teller 1")),
        "ticket_id": str(ticket["id"]),
        "token": ticket["token"],
        "service": "teller",
        "booking_code": "ZZZZZZ",
        "case_id": "1",
        "rule_id": "1",
        "alert_id": "1",
    }
    checked = 0
    for path, method, operation in _operations(spec):
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        body = {"service": "cs"} if method == "post" else None
        response = getattr(client, method)(url, json=body)
        required = operation.get("security") and {} not in operation["security"]
        if required:
            assert response.status_code == 401, (path, method, response.status_code)
        else:
            assert response.status_code != 401, (path, method, response.get_data(as_text=True))
        checked += 1
    assert checked == len(list(_operations(spec)))
    # and with a token the staff endpoints answer
    ok(post(client, f"/counters/{values['counter_id']}/open", floor.h_staff))


def test_the_api_index_points_at_the_document(client):
    body = ok(client.get(f"{API}/"))
    assert client.get(body["openapi"]).status_code == 200
