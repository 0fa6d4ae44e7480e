"""Observability: Prometheus metrics at /metrics (families, values that move with committed
work, who may scrape, several processes added up) and structured logs with request ids.

The multiprocess and log-line tests use real server processes (tests/servers.py): a
`PROMETHEUS_MULTIPROC_DIR` shared by two processes, a JSON log file read back line by line.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from queue_app.core.types import utcnow
from queue_app.extensions import db
from queue_app.jobs import scheduler
from queue_app.jobs.units import per_active_branch
from queue_app.notify.models import Channel, OutboxMessage, OutboxStatus
from queue_app.observability import gunicorn_conf
from queue_app.observability.logs import json_formatter

from .apihelp import API, issue, ok, post
from .servers import ROOT, start_server, stop_server
from .sqlcount import statements_sent

FAMILIES = (
    "queue_app_http_requests",
    "queue_app_http_request_duration_seconds",
    "queue_app_tickets_issued",
    "queue_app_tickets_called",
    "queue_app_socket_clients",
    "queue_app_job_runs",
    "queue_app_job_duration_seconds",
    "queue_app_outbox_pending_messages",
    "queue_app_outbox_due_messages",
    "queue_app_outbox_oldest_due_age_seconds",
    "queue_app_backlog_up",
)
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")
TOKEN = "prometheus-scrape-token-for-tests"


def parse(text: str) -> dict:
    """{family name: {(sample name, frozenset(labels)): value}}"""
    out = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: dict, sample: str, **labels) -> float:
    """The sample's value (0 when absent: a counter never incremented)."""
    key = (sample, frozenset(labels.items()))
    for samples in metrics.values():
        if key in samples:
            return samples[key]
    return 0.0


@pytest.fixture
def scrape(client, monkeypatch, app):
    """GET /metrics as the operator's Prometheus (this machine's address allowed)."""
    monkeypatch.setitem(app.config, "METRICS_ALLOW", "127.0.0.1")
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)

    def get() -> dict:
        response = client.get("/metrics")
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.content_type.startswith("text/plain")
        return parse(response.get_data(as_text=True))

    return get


# --- families and values ---------------------------------------------------------------------


def test_every_family_is_exposed(scrape):
    metrics = scrape()
    for name in FAMILIES:
        assert name in metrics, name
    for audience in ("display", "kiosk", "staff", "ticket", "dashboard", "feedback"):
        assert ("queue_app_socket_clients", frozenset({("audience", audience)})) in metrics[
            "queue_app_socket_clients"
        ]
    assert value(metrics, "queue_app_backlog_up", source="outbox") == 1


def test_tickets_issued_and_called_through_the_api_move_the_counters(client, floor, scrape):
    before = scrape()
    issue(client, "teller")
    issue(client, "teller")
    teller = floor.counter_id("Teller 1")
    ok(post(client, f"/counters/{teller}/open", floor.h_staff))
    ok(post(client, f"/counters/{teller}/call-next", floor.h_staff))
    # a refused issue (unknown service) commits nothing and counts nothing
    assert post(client, "/branches/JKT01/tickets", json={"service": "nope"}).status_code == 422
    after = scrape()
    issued = "queue_app_tickets_issued_total"
    called = "queue_app_tickets_called_total"
    assert value(after, issued, branch="JKT01") - value(before, issued, branch="JKT01") == 2
    assert value(after, called, branch="JKT01") - value(before, called, branch="JKT01") == 1
    assert value(after, issued, branch="MNL01") == value(before, issued, branch="MNL01")


def test_the_request_counter_counts_by_endpoint_never_by_raw_path(client, scrape):
    before = scrape()
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page/0123456789abcdef").status_code == 404
    assert client.get(f"{API}/tickets/not-a-real-visit-token-0123456789").status_code == 404
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    after = parse(text)
    sample = "queue_app_http_requests_total"
    healthz = {"method": "GET", "endpoint": "web.healthz", "status": "2xx"}
    assert value(after, sample, **healthz) - value(before, sample, **healthz) == 3
    unmatched = {"method": "GET", "endpoint": "unmatched", "status": "4xx"}
    assert value(after, sample, **unmatched) - value(before, sample, **unmatched) == 1
    follow = {"method": "GET", "endpoint": "tickets.follow_ticket", "status": "4xx"}
    assert value(after, sample, **follow) - value(before, sample, **follow) == 1
    assert "0123456789abcdef" not in text and "not-a-real-visit-token" not in text
    count = "queue_app_http_request_duration_seconds_count"
    assert (
        value(after, count, endpoint="web.healthz") - value(before, count, endpoint="web.healthz")
        == 3
    )


def test_outbox_backlog_is_read_from_the_database_at_scrape_time(app_ctx, scrape):
    now = utcnow()

    def message(channel, status, at):
        return OutboxMessage(
            kind="test",
            channel=channel,
            recipient="+6281234567890",
            body="hello",
            status=status,
            next_attempt_at=at,
        )

    before = scrape()
    assert value(before, "queue_app_outbox_due_messages", channel="sms") == 0
    db.session.add_all(
        [
            message(Channel.SMS, OutboxStatus.PENDING, now - timedelta(seconds=300)),
            message(Channel.SMS, OutboxStatus.PENDING, now - timedelta(seconds=10)),
            message(Channel.EMAIL, OutboxStatus.PENDING, now + timedelta(hours=1)),
            message(Channel.WHATSAPP, OutboxStatus.SENT, now - timedelta(hours=1)),
        ]
    )
    db.session.commit()
    after = scrape()
    assert value(after, "queue_app_outbox_pending_messages", channel="sms") == 2
    assert value(after, "queue_app_outbox_due_messages", channel="sms") == 2
    assert value(after, "queue_app_outbox_pending_messages", channel="email") == 1
    assert value(after, "queue_app_outbox_due_messages", channel="email") == 0
    assert value(after, "queue_app_outbox_pending_messages", channel="whatsapp") == 0
    age = value(after, "queue_app_outbox_oldest_due_age_seconds", channel="sms")
    assert 300 <= age < 3600
    assert value(after, "queue_app_outbox_oldest_due_age_seconds", channel="email") == 0


def test_job_runs_are_counted_by_outcome_and_their_log_lines_carry_the_job(
    app, floor, scrape, caplog
):
    def fine(_app, _now):
        logging.getLogger("queue_app.test_job").info("working")
        return 1

    def broken(_app, _now):
        raise RuntimeError("boom")

    def one_branch_fails(the_app, _now):
        def work(branch):
            if branch.code == "MNL01":
                raise RuntimeError("this branch fails")
            return 1

        return per_active_branch(the_app, work, "testing")

    before = scrape()
    with caplog.at_level(logging.INFO):
        scheduler._runner(app, fine, "obs_fine")()
        with pytest.raises(RuntimeError):
            scheduler._runner(app, broken, "obs_broken")()
        assert scheduler._runner(app, one_branch_fails, "obs_partial")() == 1
    after = scrape()
    runs = "queue_app_job_runs_total"
    for job, outcome in (("obs_fine", "ok"), ("obs_broken", "error"), ("obs_partial", "partial")):
        labels = {"job": job, "outcome": outcome}
        assert value(after, runs, **labels) - value(before, runs, **labels) == 1, job
    worked = [r for r in caplog.records if r.getMessage() == "working"]
    assert [r.job for r in worked] == ["obs_fine"]
    failed = [r for r in caplog.records if "failed for branch" in r.getMessage()]
    assert failed and all(r.job == "obs_partial" for r in failed)
    # outside a job run: no job
    logging.getLogger("queue_app.test_job").warning("outside")
    assert caplog.records[-1].job is None


# --- who may scrape --------------------------------------------------------------------------


def test_metrics_are_off_unless_configured(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_ALLOW", "")
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_metrics_refuse_strangers(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    monkeypatch.setitem(app.config, "METRICS_ALLOW", "")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert "queue_app_" not in response.get_data(as_text=True)
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/metrics", headers=good).status_code == 200

    # networks: the address decides (X-Forwarded-For is not trusted without PROXY_COUNT)
    monkeypatch.setitem(app.config, "METRICS_ALLOW", "10.0.0.0/8, 192.0.2.7")
    response = client.get("/metrics", headers=good)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    spoofed = {**good, "X-Forwarded-For": "10.1.2.3"}
    assert client.get("/metrics", headers=spoofed).status_code == 403
    inside = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics", headers=good, environ_base=inside).status_code == 200
    # both configured: both must pass
    assert client.get("/metrics", environ_base=inside).status_code == 401
    monkeypatch.setitem(app.config, "METRICS_TOKEN", None)
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 403


# --- request ids and log lines ---------------------------------------------------------------


def test_a_sane_request_id_is_echoed_and_a_malicious_one_replaced(client):
    sane = "req-4f1c2b9a.7:edge=1"
    response = client.get("/healthz", headers={"X-Request-ID": sane})
    assert response.headers["X-Request-ID"] == sane
    for bad in ("<script>alert(1)</script>", "x" * 129, "short", "a b c d e f g h", "id;rm -rf /"):
        response = client.get("/healthz", headers={"X-Request-ID": bad})
        given = response.headers["X-Request-ID"]
        assert given != bad and len(given) == 32 and int(given, 16) >= 0, bad
    one = client.get("/healthz").headers["X-Request-ID"]
    two = client.get("/healthz").headers["X-Request-ID"]
    assert one != two


def test_the_access_line_hides_secret_path_parts_and_control_characters(client, caplog):
    token = "A" * 40
    with caplog.at_level(logging.INFO):
        client.get(f"/t/{token}?device_token=query-secret")
        client.get("/no/such%0Afake INFO line")
        client.get("/r/" + "s" * 30 + "/thanks")
    paths = [r.path for r in caplog.records if r.name == "queue_app.access"]
    assert paths == ["/t/<token>", "/no/such?fake INFO line", "/r/<signed>/thanks"]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert token not in text and "query-secret" not in text


def test_the_log_line_takes_the_user_id_without_reading_the_user_again(client, floor, caplog):
    """The counter screen's read ends its transaction with a rollback, which expires the
    signed-in user: the access log's user id comes from the row's identity, not from a second
    read of the row after the view (one `users` read per request, the sign-in's)."""
    with client.session_transaction() as sess:
        sess["_user_id"] = floor.staff.get_id()
        sess["_fresh"] = True
    url = f"/counter/JKT01/{floor.counter_id('Teller 1')}/state"
    with caplog.at_level(logging.INFO), statements_sent() as sent:
        response = client.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert sum(bool(re.search(r"\bFROM users\b", s)) for s in sent) == 1
    [record] = [r for r in caplog.records if r.name == "queue_app.access"]
    assert json.loads(json_formatter().format(record))["user_id"] == floor.staff.id


def test_every_record_of_a_request_carries_its_id_and_the_json_line_parses(client, floor, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get(
            f"{API}/branches/JKT01/counters",
            headers={**floor.h_staff, "X-Request-ID": "trace-0001-abc"},
        )
    assert response.status_code == 200
    access = [r for r in caplog.records if r.name == "queue_app.access"]
    assert len(access) == 1
    record = access[0]
    assert record.request_id == "trace-0001-abc"
    line = json.loads(json_formatter().format(record))
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["method"] == "GET" and line["path"] == "/api/v1/branches/JKT01/counters"
    assert line["status"] == 200 and line["duration_ms"] >= 0
    assert line["user_id"] == floor.staff.id
    assert line["level"] == "INFO" and line["logger"] == "queue_app.access"
    assert line["endpoint"] == "branches.list_counters"


def test_json_log_lines_of_a_real_server(app, floor, tmp_path):
    """A server process with LOG_FORMAT=json: every line it logs parses; the access line of
    a request has the id the response carried; a visit token, the query string and the phone
    number given are nowhere in the log."""
    db.session.commit()
    log_path = tmp_path / "server.log"
    proc, url = start_server(
        app.config["SQLALCHEMY_DATABASE_URI"], log_path, LOG_FORMAT="json", NOTIFY_URGENT="off"
    )
    try:
        request = urllib.request.Request(url + "/healthz", headers={"X-Request-ID": "abc-123-def"})
        with urllib.request.urlopen(request, timeout=10) as response:
            echoed = response.headers["X-Request-ID"]
        request = urllib.request.Request(url + "/healthz", headers={"X-Request-ID": "bad id\t!"})
        with urllib.request.urlopen(request, timeout=10) as response:
            replaced = response.headers["X-Request-ID"]
        body = json.dumps({"service": "teller", "customer": {"phone": "+6281299887766"}})
        request = urllib.request.Request(
            url + f"{API}/branches/JKT01/tickets",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["token"]
        with urllib.request.urlopen(f"{url}/t/{token}?device_token=s3cr3t-q", timeout=10):
            pass
    finally:
        stop_server(proc)
    text = log_path.read_text()
    lines = []
    for raw in text.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    access = [line for line in lines if line.get("logger") == "queue_app.access"]
    assert echoed == "abc-123-def"
    first = [line for line in access if line.get("request_id") == echoed]
    assert len(first) == 1 and first[0]["path"] == "/healthz" and first[0]["status"] == 200
    assert replaced != "bad id\t!" and [
        line["path"] for line in access if line.get("request_id") == replaced
    ] == ["/healthz"]
    track = [line for line in access if line.get("endpoint") == "mobile.track"]
    assert len(track) == 1 and track[0]["path"] == "/t/<token>"
    assert token not in text and "s3cr3t-q" not in text
    assert "+6281299887766" not in text and "81299887766" not in text
    # every line of the process is JSON but the start-up banner (printed, not logged)
    logged = [raw for raw in text.splitlines() if raw.startswith("{")]
    assert len(logged) >= 4


# --- several processes -----------------------------------------------------------------------


def _get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


def _post_json(url, path, body=None, headers=None):
    request = urllib.request.Request(
        url + API + path,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


async def _hold_sockets(urls_and_tokens, then):
    """Connect one phone socket per (url, token), run `then()` in a thread while they are all
    connected, disconnect, and return what `then` returned."""
    import socketio as sio

    clients = []
    try:
        for url, token in urls_and_tokens:
            client = sio.AsyncClient(reconnection=False)
            got = asyncio.Event()
            client.on("snapshot", lambda _data, got=got: got.set(), namespace="/floor")
            await client.connect(
                url, namespaces=["/floor"], auth={"ticket": token}, transports=["websocket"]
            )
            clients.append(client)
            await asyncio.wait_for(got.wait(), 20)
        return await asyncio.get_running_loop().run_in_executor(None, then)
    finally:
        for client in clients:
            await client.disconnect()


def _in_thread(coroutine):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_multiprocess_mode_adds_up_two_server_processes(app, floor, tmp_path):
    db.session.commit()
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "METRICS_TOKEN": TOKEN}
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    procs = []
    try:
        a, url_a = start_server(database, tmp_path / "a.log", **env)
        procs.append(a)
        b, url_b = start_server(database, tmp_path / "b.log", **env)
        procs.append(b)
        tokens = [
            _post_json(url_a, "/branches/JKT01/tickets", {"service": "teller"})["token"],
            _post_json(url_a, "/branches/JKT01/tickets", {"service": "teller"})["token"],
            _post_json(url_b, "/branches/JKT01/tickets", {"service": "teller"})["token"],
        ]
        for _ in range(3):
            _get(url_a + "/healthz")
        for _ in range(2):
            _get(url_b + "/healthz")
        teller = floor.counter_id("Teller 1")
        _post_json(url_b, f"/counters/{teller}/open", headers=floor.h_staff)
        _post_json(url_b, f"/counters/{teller}/call-next", headers=floor.h_staff)

        # one phone socket on each process: the gauge adds them up while they are connected
        during = _in_thread(
            _hold_sockets(
                [(url_a, tokens[0]), (url_b, tokens[1])],
                lambda: parse(_get(url_a + "/metrics", auth)),
            )
        )
        from_a = parse(_get(url_a + "/metrics", auth))
        from_b = parse(_get(url_b + "/metrics", auth))
    finally:
        for proc in procs:
            stop_server(proc)
    for metrics in (from_a, from_b):
        assert value(metrics, "queue_app_tickets_issued_total", branch="JKT01") == 3
        assert value(metrics, "queue_app_tickets_called_total", branch="JKT01") == 1
        healthz = {"method": "GET", "endpoint": "web.healthz", "status": "2xx"}
        assert value(metrics, "queue_app_http_requests_total", **healthz) == 5
        assert value(metrics, "queue_app_socket_clients", audience="ticket") == 0
    assert value(during, "queue_app_socket_clients", audience="ticket") == 2
    pids = {name.rsplit("_", 1)[1].split(".")[0] for name in os.listdir(shared)}
    assert {str(a.pid), str(b.pid)} <= pids


def test_the_gunicorn_hooks_drop_dead_workers_gauges_and_stale_files(tmp_path):
    """Real processes write to the directory and exit; `child_exit` drops the live gauge of
    one (its counters stay), `on_starting` removes the files of processes gone."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    script = (
        "from queue_app.observability import metrics as m\n"
        "m.socket_connected('display')\n"
        "m.TICKETS_ISSUED.labels('JKT01').inc()\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    pids = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", script + "import os; print(os.getpid())"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        pids.append(int(proc.stdout.strip()))

    def aggregate() -> dict:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(shared))
        return parse(generate_latest(registry).decode())

    assert value(aggregate(), "queue_app_socket_clients", audience="display") == 2
    assert value(aggregate(), "queue_app_tickets_issued_total", branch="JKT01") == 2

    class Worker:
        pid = pids[0]

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    try:
        gunicorn_conf.child_exit(None, Worker())
        assert value(aggregate(), "queue_app_socket_clients", audience="display") == 1
        assert value(aggregate(), "queue_app_tickets_issued_total", branch="JKT01") == 2
        (shared / f"counter_{os.getpid()}.db").write_bytes(b"")  # a live process's file stays
        gunicorn_conf.on_starting(None)
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    assert os.listdir(shared) == [f"counter_{os.getpid()}.db"]


def test_the_realtime_process_serves_its_own_socket_gauge(app, floor, tmp_path):
    """The asyncio realtime process (queue_app/realtime/aio.py): its own registry (the
    multiprocess directory is ignored there), the same access rule as the web's /metrics."""
    import redis

    try:
        redis.Redis.from_url(REDIS).ping()
    except redis.exceptions.ConnectionError:
        pytest.fail(f"the realtime process needs a Redis at {REDIS} (TEST_REDIS_URL)")
    db.session.commit()
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        "SOCKETIO_MESSAGE_QUEUE": REDIS,
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    web, url = start_server(database, tmp_path / "web.log", SOCKETIO_MESSAGE_QUEUE=REDIS)
    try:
        token = _post_json(url, "/branches/JKT01/tickets", {"service": "teller"})["token"]
    finally:
        stop_server(web)
    proc, rt_url = start_server(
        database,
        tmp_path / "rt.log",
        command=("-m", "queue_app.realtime.aio"),
        ready="/healthz",
        **env,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(rt_url + "/metrics")
        assert refused.value.code == 401
        during = _in_thread(
            _hold_sockets([(rt_url, token)], lambda: parse(_get(rt_url + "/metrics", auth)))
        )
        after = parse(_get(rt_url + "/metrics", auth))
    finally:
        stop_server(proc)
    assert value(during, "queue_app_socket_clients", audience="ticket") == 1
    assert value(after, "queue_app_socket_clients", audience="ticket") == 0
    assert os.listdir(shared) == []


def _gunicorn(app, tmp_path, *, workers: int, port: int, **env_extra):
    """gunicorn with queue_app's settings module on the test database; its log (kept open for
    the process, closed by the caller) in `tmp_path / "gunicorn.log"`."""
    env = {
        **os.environ,
        "QUEUE_APP_PROFILE": "testing",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        **env_extra,
    }
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (kept open for the process)
    master = subprocess.Popen(
        [
            gunicorn,
            "-c",
            "python:queue_app.observability.gunicorn_conf",
            "-w",
            str(workers),
            "--threads",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            *(["--no-control-socket"] if _has_control_socket(gunicorn) else []),
            "queue_app:create_app('testing')",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return master, log


def test_gunicorn_workers_add_up_and_a_killed_worker_keeps_its_counts(app, tmp_path):
    """gunicorn with queue_app's settings module, two gthread workers, one directory: the
    requests are counted whichever worker served them; a worker killed with SIGKILL leaves its
    counts in the totals and its live gauge file is dropped (`child_exit`)."""
    import signal
    import time

    from .servers import free_port

    shared = tmp_path / "prometheus"
    port = free_port()
    master, log = _gunicorn(
        app,
        tmp_path,
        workers=2,
        port=port,
        PROMETHEUS_MULTIPROC_DIR=str(shared),
        METRICS_TOKEN=TOKEN,
        LOG_FORMAT="json",
    )
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    healthz = {"method": "GET", "endpoint": "web.healthz", "status": "2xx"}

    def workers() -> set[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(master.pid)], capture_output=True, text=True, check=False
        )
        return {int(p) for p in out.stdout.split()}

    def wait_for(check, what):
        for _ in range(300):
            if check():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what}: {(tmp_path / 'gunicorn.log').read_text()[-2000:]}")

    try:

        def up():
            try:
                _get(url + "/readyz")  # not the endpoint counted below
                return True
            except OSError:
                return False

        wait_for(up, "gunicorn did not start")
        wait_for(lambda: len(workers()) == 2, "two workers")
        for _ in range(20):
            _get(url + "/healthz")
        wait_for(
            lambda: {f"gauge_livesum_{p}.db" for p in workers()} <= set(os.listdir(shared)),
            "every worker has its files",
        )
        before = parse(_get(url + "/metrics", auth))
        victim = min(workers())
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in workers() and len(workers()) == 2, "the worker is replaced")
        wait_for(
            lambda: f"gauge_livesum_{victim}.db" not in os.listdir(shared), "gauge file dropped"
        )
        after = parse(_get(url + "/metrics", auth))
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)
        log.close()
    assert value(before, "queue_app_http_requests_total", **healthz) == 20
    assert value(after, "queue_app_http_requests_total", **healthz) == 20
    metrics_ok = {"method": "GET", "endpoint": "observability.metrics", "status": "2xx"}
    assert value(after, "queue_app_http_requests_total", **metrics_ok) == 1
    lines = [
        json.loads(raw)
        for raw in (tmp_path / "gunicorn.log").read_text().splitlines()
        if raw.startswith("{")
    ]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    assert sum(line["logger"] == "queue_app.access" for line in lines) >= 21


def _has_control_socket(gunicorn) -> bool:
    """gunicorn 24+ opens a control socket in the home folder unless told not to."""
    out = subprocess.run([gunicorn, "--help"], capture_output=True, text=True, timeout=30)
    return "--no-control-socket" in out.stdout


def test_gunicorn_keeps_an_idle_connection_longer_than_the_proxy(app, floor, tmp_path):
    """With queue_app's settings, a keep-alive connection left idle longer than gunicorn's own
    default (2 s) still takes the next request: the README's nginx reuses idle upstream
    connections for up to 60 s, and a POST sent on one gunicorn had closed would fail (nginx
    answers 502 rather than retry it)."""
    import http.client
    import signal
    import time

    from .servers import free_port

    db.session.commit()
    port = free_port()
    master, log = _gunicorn(app, tmp_path, workers=1, port=port, LOG_FORMAT="text")
    try:
        for _ in range(300):
            try:
                _get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError((tmp_path / "gunicorn.log").read_text()[-2000:])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        first.read()
        assert first.status == 200 and first.getheader("Connection") != "close"
        sock = conn.sock
        time.sleep(3)  # idle past gunicorn's default keep-alive: the condition under test
        body = json.dumps({"service": "teller"})
        headers = {"Content-Type": "application/json"}
        conn.request("POST", f"{API}/branches/JKT01/tickets", body=body, headers=headers)
        second = conn.getresponse()
        assert second.status == 201, second.read()[:300]
        assert conn.sock is sock  # the same connection, not a new one
        conn.close()
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(timeout=30)
        log.close()
