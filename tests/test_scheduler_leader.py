"""Exactly one scheduler runs the jobs (jobs/leader.py): on PostgreSQL through a session advisory
lock, on SQLite through a file lock. A second `flask jobs run` stands by and takes over when the
first is killed. Real processes against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from queue_app.extensions import db
from queue_app.jobs import leader

ROOT = Path(__file__).resolve().parent.parent


def test_one_lock_holder_at_a_time(app_ctx):
    first, second = leader.scheduler_lock(app_ctx), leader.scheduler_lock(app_ctx)
    try:
        assert first.acquire()
        assert first.held()
        assert not second.acquire()  # another session / open file: refused at once
        assert not second.held()
        first.release()
        assert not first.held()
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


class FakeScheduler:
    def __init__(self, log):
        self.log = log

    def start(self):
        self.log.append("start")

    def get_jobs(self):
        return []

    def shutdown(self, wait=True):
        self.log.append("shutdown")


class ScriptedLock:
    """A lock whose answers the test writes: `acquire` and `held` pop from their scripts (the
    last answer repeats)."""

    def __init__(self, acquire, held):
        self.acquire_answers, self.held_answers = list(acquire), list(held)
        self.released = 0

    def _next(self, answers):
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def acquire(self):
        return self._next(self.acquire_answers)

    def held(self):
        return self._next(self.held_answers)

    def release(self):
        self.released += 1


def test_the_leader_stops_its_jobs_when_its_lock_is_gone_and_leads_again(app_ctx, monkeypatch):
    """Leader; its lock is gone at the third check (the database restarted, the session cut):
    the jobs stop, it stands by while another holds the lock, then leads again."""
    lock = ScriptedLock(acquire=[True, False, False, True], held=[True, True, False, True])
    monkeypatch.setattr(leader, "scheduler_lock", lambda app: lock)
    events, said, stop = [], [], threading.Event()

    def make():
        return FakeScheduler(events)

    thread = threading.Thread(
        target=leader.run,
        args=(app_ctx, make),
        kwargs={"poll_s": 0.01, "stop": stop, "say": said.append},
    )
    thread.start()
    deadline = time.monotonic() + 10
    while events.count("start") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert events == ["start", "shutdown", "start", "shutdown"]
    roles = [line.split(",")[0] for line in said]
    assert roles == [
        "scheduler: leader",
        "scheduler: lost the lock",
        "scheduler: standby (another scheduler holds the lock)",
        "scheduler: leader",
    ]


def test_an_advisory_lock_is_gone_with_its_session(app_ctx):
    """PostgreSQL frees the lock when the leader's session ends (here: terminated by the server,
    as in a restart); the leader sees it at its next check and another process can take it."""
    from sqlalchemy import text

    if db.engine.dialect.name != "postgresql":
        pytest.skip("session advisory locks are PostgreSQL's; SQLite's lock is a file")
    first, second = leader.scheduler_lock(app_ctx), leader.scheduler_lock(app_ctx)
    try:
        assert first.acquire()
        pid = first.conn.execute(text("SELECT pg_backend_pid()")).scalar()
        first.conn.commit()
        with db.engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            admin.commit()
        assert not first.held()
        assert second.acquire()
    finally:
        first.release()
        second.release()


def _spawn(database_url: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "QUEUE_APP_PROFILE": "testing",
        "DATABASE_URL": database_url,
        "SCHEDULER_POLL_S": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "queue_app", "jobs", "run"],
        cwd=ROOT,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(path: Path, text: str, *, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def test_a_second_scheduler_stands_by_and_takes_over_when_the_first_is_killed(app_ctx, tmp_path):
    url = app_ctx.config["SQLALCHEMY_DATABASE_URI"]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    procs = [_spawn(url, logs[0])]
    try:
        assert _wait_for(logs[0], "scheduler: leader"), logs[0].read_text()
        procs.append(_spawn(url, logs[1]))
        assert _wait_for(logs[1], "scheduler: standby"), logs[1].read_text()
        time.sleep(1.0)  # several tries of the standby: still only one leader
        assert "scheduler: leader" not in logs[1].read_text()
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(timeout=10)
        # the killed leader's lock is freed with its process: the standby takes over
        assert _wait_for(logs[1], "scheduler: leader"), logs[1].read_text()
        assert "deliver_outbox" in logs[1].read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
