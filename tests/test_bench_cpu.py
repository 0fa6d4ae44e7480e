"""The load bench's CPU accounting (bench/load_day.py): the cost per operation and the ceiling
it sets are what the closing figures of the load aim rest on."""

import importlib.util
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from queue_app.extensions import db

_spec = importlib.util.spec_from_file_location(
    "load_day", Path(__file__).resolve().parent.parent / "bench" / "load_day.py"
)
load_day = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load_day)


def test_the_cost_per_operation_and_the_ceiling_it_sets(monkeypatch):
    monkeypatch.setattr(load_day.os, "cpu_count", lambda: 2)
    cpu = {
        "web": 30.0,
        "realtime": 20.0,
        "postgres": 15.0,
        "redis": 1.0,
        "clients": 3.0,
        "driver": 2.0,
        "machine": 75.0,  # 71 accounted for: 4 s elsewhere
    }
    budget = load_day.cpu_budget(cpu, ops=2500, duration=45.0)
    assert budget["cpu_ms_per_op"] == {
        "web": 12.0,
        "realtime": 8.0,
        "postgres": 6.0,
        "redis": 0.4,
        "clients": 1.2,
        "driver": 0.8,
        "other": 1.6,
    }
    assert budget["cpu_ms_per_op_total"] == 30.0
    assert budget["cores_busy"] == 1.67
    assert budget["ops_per_s_at_this_cost"] == 66.7  # 2 cores x 1000 ms / 30 ms
    assert budget["ops_per_s_at_this_cost_server_only"] == 71.4  # / 28 ms
    assert load_day.cpu_budget(cpu, ops=0, duration=45.0) == {}


def test_the_machine_and_a_process_group_are_measured():
    busy0, mine0 = load_day.machine_busy_s(), load_day.pids_cpu_s([load_day.os.getpid()])
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert load_day.pids_cpu_s([load_day.os.getpid()]) - mine0 >= 0.2
    assert load_day.machine_busy_s() - busy0 >= 0.2


def test_postgresql_cpu_counts_the_backends_that_have_ended(app):
    """The bench's pool opens and closes connections: a backend that has ended still counts
    (through the postmaster's children counters), or a run would lose its CPU."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's processes: the PostgreSQL run measures them")
        url = db.engine.url
    before = load_day.postgres_cpu_s()
    engine = create_engine(url)
    with engine.connect() as conn:  # a backend of its own, that burns about half a second
        conn.execute(
            text("SELECT count(*) FROM generate_series(1, 4000000) AS g(i) WHERE i % 7 = 0")
        )
    engine.dispose()  # the backend ends
    deadline = time.monotonic() + 5
    while load_day.postgres_cpu_s() - before < 0.2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load_day.postgres_cpu_s() - before >= 0.2
