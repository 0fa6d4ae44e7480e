"""Fuzzing API v1 with arbitrary bodies and path segments: never a 5xx, always the error shape.

Hypothesis generates JSON values of every kind (and bytes that are not JSON at all), objects
with the endpoints' own field names holding wrong or extreme values, and posts them to every
POST endpoint with a valid staff token, so that what passes validation reaches the engine.
Whatever happens, the answer is below 500, and a 4xx carries `{"error": {"code", "message"}}`.
The test profile propagates exceptions, so a crash fails the test with its traceback.
"""

import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .apihelp import (
    API,
    assert_error,
    build_floor,
    fast_passwords,
    issue,
    ok,
    post,
)

FIELD_NAMES = [
    "service",
    "priority",
    "source",
    "customer",
    "phone",
    "name",
    "external_id",
    "appointment_due_at",
    "counter_id",
    "outcome",
    "note",
    "reason",
    "keep_place",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=10)
    | st.sampled_from(
        [
            "teller",
            "cs",
            "loans",
            "vip",
            "normal",
            "staff",
            "appointment",
            "kiosk",
            "0812-3456-7890",
            "+6281234567890",
            "2026-03-03T10:00:00+07:00",
            "2026-03-03T10:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "\x00",
            "\ud800",
            "a\u0301",
            "x" * 3000,
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.sampled_from(FIELD_NAMES), children, max_size=5)
    ),
    max_leaves=12,
)
# objects shaped like the endpoints' bodies: the right names with anything in them
shaped = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=5)
customer_shaped = st.fixed_dictionaries(
    {"service": st.sampled_from(["teller", "cs", "loans"]) | scalars},
    optional={
        "customer": st.dictionaries(
            st.sampled_from(["phone", "name", "external_id", "email"]), scalars, max_size=3
        )
        | json_values,
        "priority": scalars,
        "source": scalars,
        "appointment_due_at": scalars,
    },
)
bodies = st.one_of(json_values, shaped, customer_shaped)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    json_values.map(lambda v: json.dumps(v)[:-1].encode()),  # cut short
)

POST_ENDPOINTS = [
    "/branches/JKT01/tickets",
    "/counters/{counter}/open",
    "/counters/{counter}/pause",
    "/counters/{counter}/close",
    "/counters/{counter}/call-next",
    "/tickets/{ticket}/call",
    "/tickets/{ticket}/start",
    "/tickets/{ticket}/finish",
    "/tickets/{ticket}/recall",
    "/tickets/{ticket}/no-show",
    "/tickets/{ticket}/transfer",
    "/tickets/{ticket}/hold",
    "/tickets/{ticket}/resume",
    "/tickets/{ticket}/cancel",
]

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def scene(client, make, monkeypatch):
    fast_passwords(monkeypatch)
    floor = build_floor(make)
    counter = floor.counter_id("Teller 1")
    for _ in range(3):
        issue(client, "teller")
    ok(post(client, f"/counters/{counter}/open", floor.h_staff))
    called = ok(post(client, f"/counters/{counter}/call-next", floor.h_staff))
    return {"counter": counter, "ticket": called["id"], "headers": floor.h_staff}


def _check(response):
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        error = assert_error(response, response.status_code)
        if error["code"] == "invalid":  # a validation error says which fields
            assert isinstance(error.get("fields"), dict | list), error
    elif response.status_code == 204:
        assert response.get_data() == b""
    else:
        assert isinstance(response.get_json(), dict)


@pytest.mark.parametrize("template", POST_ENDPOINTS)
def test_post_endpoints_survive_arbitrary_bodies(client, scene, template):
    path = API + template.format(**scene)

    @FUZZ
    @given(body=bodies, with_token=st.booleans())
    def run(body, with_token):
        headers = scene["headers"] if with_token else None
        _check(client.post(path, json=body, headers=headers))

    run()


@pytest.mark.parametrize("template", POST_ENDPOINTS)
def test_post_endpoints_survive_bytes_that_are_not_json(client, scene, template):
    path = API + template.format(**scene)

    @FUZZ
    @given(raw=raw_bodies)
    def run(raw):
        response = client.post(
            path, data=raw, content_type="application/json", headers=scene["headers"]
        )
        _check(response)

    run()


@pytest.mark.parametrize(
    "template",
    [
        "/branches/{}",
        "/branches/{}/services",
        "/branches/{}/tickets",
        "/branches/{}/counters",
        "/tickets/{}",
        "/tickets/{}/start",
        "/counters/{}/open",
    ],
)
def test_path_segments_survive_arbitrary_text(client, scene, template):
    @FUZZ
    @given(segment=st.text(min_size=1, max_size=80) | st.integers().map(str))
    def run(segment):
        path = API + template.format(quote(segment, safe=""))
        if template.endswith("tickets") or "/start" in template or "/open" in template:
            response = client.post(path, json={"service": "teller"}, headers=scene["headers"])
        else:
            response = client.get(path, headers=scene["headers"])
        if response.status_code == 308:  # "a%2F" is "a/": the router's canonical-path redirect
            assert "/" in segment
            return
        _check(response)

    run()
