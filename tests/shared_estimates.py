"""Opt-in pytest plugin: run any test files with the estimates shared through Redis.

    pytest -p tests.shared_estimates tests/test_waits_live.py tests/test_realtime.py ...

Every test then reads and makes its estimates through `waits/shared.py` (`EWT_SHARED` on,
`REDIS_URL` = `TEST_EWT_REDIS_URL`, default Redis database 11). The database is emptied after
each test and its branch ids and sequences are used again, so emptying the process cache
(`live.clear_cache()`, as `conftest.empty_database` and tests do) also empties the shared
estimates: a test that starts afresh starts afresh everywhere.
"""

from __future__ import annotations

import os

import pytest
import redis

from queue_app.waits import live, shared

URL = os.environ.get("TEST_EWT_REDIS_URL", "redis://127.0.0.1:6379/11")


@pytest.fixture(autouse=True)
def _shared_estimates(app, monkeypatch):
    client = redis.Redis.from_url(URL)
    client.flushdb()
    monkeypatch.setitem(app.config, "EWT_SHARED", True)
    monkeypatch.setitem(app.config, "REDIS_URL", URL)
    shared.reset()
    clear_process_cache = live.clear_cache

    def clear_cache() -> None:
        clear_process_cache()
        client.flushdb()

    monkeypatch.setattr(live, "clear_cache", clear_cache)
    live.clear_cache()
    yield
    clear_process_cache()
    client.flushdb()
    shared.reset()
