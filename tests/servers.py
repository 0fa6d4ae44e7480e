"""Starting the application as a real server process for end-to-end tests (restarts, several
processes sharing Redis)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    database_url, log_path, *, command=("run.py",), port=None, ready="/readyz", **env_extra
):
    """Start the app as its own process (`python run.py` unless told), wait for `ready` (the
    asyncio realtime process has only /healthz)."""
    port = port or free_port()
    env = {
        **os.environ,
        "QUEUE_APP_PROFILE": "testing",
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SCHEDULER_ENABLED": "0",
        **env_extra,
    }
    log = open(log_path, "ab")  # noqa: SIM115 (kept open for the process)
    proc = subprocess.Popen(
        [sys.executable, *command, *(["--port", str(port)] if command != ("run.py",) else [])],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log_path).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + ready, timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
